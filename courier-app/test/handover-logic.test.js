// The door's pure logic: amounts, the signer-name check, the PIN check, drafts restored after a reload,
// pickup fees, and the door's steps as the rules allow them.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  parseYuan, nameKey, isOwnName, pinTries, inspectionRows, rowsNeedingPhoto, inspectPayload, pickupFees, chargedFees,
  PIN_MAX_FAILURES,
} from "../src/ui/handover-logic.js";

const SHA = "a".repeat(64);

test("yuan typed at a pickup parse to exact fen; anything else is no amount", () => {
  assert.equal(parseYuan("12"), 1200);
  assert.equal(parseYuan("12.5"), 1250);
  assert.equal(parseYuan(" 0.07 "), 7);
  assert.equal(parseYuan("12,30"), 1230);
  for (const bad of ["", "1.234", "-3", "abc", "1e3", null]) assert.equal(parseYuan(bad), null, String(bad));
});

test("the signer's name is compared after NFKC, without case, spaces or invisible characters", () => {
  assert.equal(nameKey(" Wang  Wei "), "wangwei");
  assert.ok(isOwnName("王 伟", "王伟"));
  assert.ok(isOwnName("ＷＡＮＧ　Ｗｅｉ", "wang wei"), "full-width letters and an ideographic space");
  assert.ok(isOwnName("wang\u200bwei", "Wang Wei"), "a zero-width space");
  assert.ok(!isOwnName("李娜", "王伟"));
  assert.ok(!isOwnName("", ""), "an empty name is never the courier's");
});

test("wrong PINs are counted on the device; at the server's limit the device stops checking", () => {
  assert.deepEqual(pinTries({}), { wrong: 0, left: PIN_MAX_FAILURES, locked: false });
  assert.deepEqual(pinTries({ pin_wrong: 4 }), { wrong: 4, left: 1, locked: false });
  assert.deepEqual(pinTries({ pin_wrong: 5 }), { wrong: 5, left: 0, locked: true });
  assert.deepEqual(pinTries({ pin_wrong: "9" }), { wrong: 0, left: 5, locked: false }, "a corrupt draft counts nothing");
});

const TASK = { id: "t-1", kind: "delivery", status: "arrived", amount_due: 6190, arrived_at: "2026-12-07T09:00:00+08:00",
  parcels: [{ parcel_no: "P1", description: "shoes", count: 2 }, { parcel_no: "P2", description: "mug", count: 1 }],
  handover: { recipient_verified: false, inspection: null, paid: false, outcome: null } };

test("a reload restores the inspection from the draft, for the parcels the task still holds", () => {
  const fresh = inspectionRows(TASK, {});
  assert.deepEqual(fresh.map((r) => [r.parcel_no, r.expected, r.counted, r.condition, r.photo]),
    [["P1", 2, 2, "ok", null], ["P2", 1, 1, "ok", null]]);
  const draft = { items: [{ parcel_no: "P2", counted: 0, condition: "damaged", photo: SHA },
    { parcel_no: "GONE", counted: 3, condition: "ok" }, { parcel_no: "P1", counted: -1, condition: "burnt", photo: "x" }] };
  const rows = inspectionRows(TASK, draft);
  assert.deepEqual(rows.map((r) => [r.parcel_no, r.counted, r.condition, r.photo]),
    [["P1", 2, "ok", null], ["P2", 0, "damaged", SHA]]);
  assert.deepEqual(rowsNeedingPhoto(rows), []);
  assert.deepEqual(rowsNeedingPhoto([{ ...rows[1], photo: null }]), ["P2"]);
  assert.deepEqual(inspectPayload(rows, true), { items: [{ parcel_no: "P1", counted: 2, condition: "ok" },
    { parcel_no: "P2", counted: 0, condition: "damaged" }], customer_accepted: true, photos: [SHA] });
});

test("a pickup charges exactly dispatch's quote when there is one, else chosen published fees", () => {
  const published = [{ code: "stairs", name: "楼层费" }, { code: "packing", name: "包装费" }];
  const quoted = pickupFees({ fees: [{ code: "packing", amount: 500 }] }, published);
  assert.deepEqual(quoted, { quoted: true, fees: [{ code: "packing", name: "包装费", amount: 500 }] });
  const open = pickupFees({ fees: [] }, published);
  assert.equal(open.quoted, false);
  assert.deepEqual(open.fees.map((f) => f.code), ["packing", "stairs"]);
  const chosen = [{ code: "packing", amount: 300 }, { code: "stairs", amount: null }, { code: "rush", amount: 999 }];
  assert.deepEqual(chargedFees(chosen, published), { fees: [{ code: "packing", amount: 300 }, { code: "rush", amount: 999 }], total: 1299, unknown: ["rush"] });
});

test("a queued step's message says what is true now: saved offline, sending online, then the server's answer", async () => {
  const { opStateKey } = await import("../src/ui/handover-logic.js");
  const { doorWords } = await import("../src/ui/screens/door-words.js");
  assert.equal(opStateKey("pending", false), "offline");
  assert.equal(opStateKey("pending", true), "sending");
  assert.equal(opStateKey("applied", false), "applied");
  assert.equal(opStateKey("taken", true), "applied");
  assert.equal(opStateKey("conflict", true), "conflict"); // applied as a field fact, not "refused"
  assert.equal(opStateKey("rejected", true), "rejected");
  for (const key of ["offline", "sending", "applied", "conflict", "rejected"]) {
    assert.ok(doorWords.zh[`door.op_${key}`] && doorWords.en[`door.op_${key}`], key);
  }
  assert.ok(!("door.queued" in doorWords.zh)); // the old "sent when online" said even once it was sent
});
