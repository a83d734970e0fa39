// The core against the REAL Fieldops server (tests/sync/test_app_core_node.py starts it and reads the JSON this
// prints): enroll from the server's QR text, pull, queue an arrival and a note with a photo, push, lose one push
// answer on purpose (the resend must be answered as duplicates, applied once), pull again.
// Run by hand: FIELDOPS_E2E_ORIGIN=http://127.0.0.1:5000 FIELDOPS_E2E_CODE=… FIELDOPS_E2E_TASK=t-… node this.
// Under `npm test` (no such variables) it does nothing.
import "fake-indexeddb/auto";
import { openStore, getMeta, getEntity } from "../../src/core/store.js";
import { createApi } from "../../src/core/api.js";
import { parseEnrollment, enroll, EnrollmentError } from "../../src/core/device.js";
import { enqueue, addBlob, pendingOps } from "../../src/core/queue.js";
import { syncOnce, localChecksum } from "../../src/core/sync.js";
import { doorState } from "../../src/core/rules.js";

const origin = process.env.FIELDOPS_E2E_ORIGIN;
const qrCode = process.env.FIELDOPS_E2E_CODE;
const taskId = process.env.FIELDOPS_E2E_TASK;

// A 1×1 PNG (the server judges the type from the bytes: JPEG, PNG or a plain SVG only).
const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC",
  "base64");

async function main() {
  const out = {};
  // The QR as the server encodes it (server/services/devices.py enrollment_qr).
  const qr = `fieldops://enroll?${new URLSearchParams({ code: qrCode, server: `${origin}/api/v1` })}`;
  const parsed = parseEnrollment(qr, { origin });
  try {
    parseEnrollment(qr, { origin: "https://another.example" });
    out.other_server = "accepted";
  } catch (err) {
    out.other_server = err instanceof EnrollmentError ? err.code : String(err);
  }
  const store = await openStore(`e2e-${process.pid}`);
  // Lose the answer of the first push on purpose: the request reaches the server, the answer does not.
  let dropNextPushAnswer = false;
  const fetchWithLoss = async (url, init) => {
    const response = await fetch(url, init);
    if (dropNextPushAnswer && String(url).endsWith("/sync/push")) {
      dropNextPushAnswer = false;
      await response.text();
      throw new TypeError("network lost after the server answered");
    }
    return response;
  };
  const api = createApi({ base: parsed.server, fetch: fetchWithLoss, getToken: () => getMeta(store, "token") });
  try {
    await enroll(store, api, { code: "zz", deviceName: "node e2e" });
  } catch (err) {
    out.bad_code = err.code;
  }
  try {
    await enroll(store, api, { code: "ABCDEFGHJK", deviceName: "node e2e" });
  } catch (err) {
    out.unknown_code = err.code;
  }
  out.enrolled = await enroll(store, api, { code: parsed.code, deviceName: "node e2e" });
  const fast = { sleep: async () => {} };
  out.first_sync = await syncOnce(store, api, fast);
  const held = await getEntity(store, "task", taskId);
  out.pulled_task = held ? { version: held.version, status: held.data.status } : null;
  out.checksum_matches_after_pull = true; // syncOnce returned no drift error: the server's scope checksum matched
  const { lat, lon } = held.data.recipient;
  await enqueue(store, { type: "stop.arrive", entityId: taskId, payload: { lat, lon } });
  const photo = await addBlob(store, new Blob([PNG], { type: "image/png" }));
  await enqueue(store, { type: "task.note", entityId: taskId, payload: { text: "门口有狗 (node e2e)", photos: [photo] },
    blobs: [photo] });
  const door = doorState(held.data, await store.getAll("queue"), { shift: null });
  out.door_before_push = { arrive: door.arrive.reason, status: door.task.status, amount_due: door.amount_due,
    pay: door.pay.reason };
  dropNextPushAnswer = true;
  out.second_sync = await syncOnce(store, api, fast);
  out.queue = (await store.getAll("queue")).map((op) => ({ seq: op.seq, type: op.type, state: op.state,
    duplicate: Boolean(op.result?.duplicate), code: op.result?.code ?? null, version: op.result?.entity?.version }));
  out.pending = (await pendingOps(store)).length;
  const after = await getEntity(store, "task", taskId);
  out.local_task = { version: after.version, status: after.data.status, arrived_at: after.data.arrived_at,
    notes: after.data.notes.map((n) => n.text) };
  out.photo = photo;
  out.blob_kept = Boolean(await store.get("blobs", photo));
  out.third_sync = await syncOnce(store, api, fast);
  out.local_checksum = await localChecksum(store);
  out.next_seq = await getMeta(store, "next_seq");
  store.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

if (origin && qrCode && taskId) {
  main().catch((err) => {
    process.stderr.write(`${err.stack ?? err}\n`);
    process.exit(1);
  });
}
