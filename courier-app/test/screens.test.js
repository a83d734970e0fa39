// The screens' pure helpers: money, depot time, the window rules checked before queueing, the notice lead.
import { test } from "node:test";
import assert from "node:assert/strict";
import "fake-indexeddb/auto";
import { yuan, depotIso, hhmm, windowText } from "../src/ui/format.js";
import { windowProblems } from "../src/ui/screens/appointment.js";
import { maskName, mapLink } from "../src/ui/screens/task.js";
import { codeText } from "../src/ui/codes.js";
import { alerts } from "../src/ui/tasks.js";

test("yuan from fen", () => {
  assert.equal(yuan(6190), "¥61.90");
  assert.equal(yuan(5), "¥0.05");
  assert.equal(yuan(0), "¥0.00");
  assert.equal(yuan(-120), "-¥1.20");
});

test("depot time: a local date and time become RFC 3339 with +08:00, and back", () => {
  assert.equal(depotIso("2026-12-07", "14:30"), "2026-12-07T14:30:00+08:00");
  assert.equal(depotIso("2026-12-07", ""), null);
  assert.equal(depotIso("7/12/2026", "14:30"), null);
  assert.equal(hhmm("2026-12-07T06:30:00Z"), "14:30");
  assert.match(windowText({ start: "2030-01-02T01:00:00Z", end: "2030-01-02T03:00:00Z" }), /^01-02 09:00–11:00$/);
});

test("a window is checked as the server checks it", () => {
  const now = new Date("2026-12-07T02:00:00Z");
  assert.deepEqual(windowProblems("2026-12-07T14:00:00+08:00", "2026-12-07T16:00:00+08:00", now), []);
  assert.deepEqual(windowProblems("2026-12-07T16:00:00+08:00", "2026-12-07T14:00:00+08:00", now), ["appt.err.order"]);
  assert.deepEqual(windowProblems("2026-12-07T16:00:00+08:00", "2026-12-07T16:00:00+08:00", now), ["appt.err.order"]);
  assert.deepEqual(windowProblems("2026-12-07T06:00:00+08:00", "2026-12-07T09:00:00+08:00", now), ["appt.err.past"]);
  assert.deepEqual(windowProblems("2026-12-07T11:00:00+08:00", "2026-12-07T23:30:00+08:00", now), ["appt.err.long"]);
  assert.deepEqual(windowProblems("2026-12-07T11:00:00+08:00", "2026-12-07T23:00:00+08:00", now), []);
  assert.deepEqual(windowProblems("2026-12-21T11:00:00+08:00", "2026-12-21T12:00:00+08:00", now), ["appt.err.far"]);
  assert.deepEqual(windowProblems(null, "2026-12-07T12:00:00+08:00", now), ["appt.err.incomplete"]);
});

test("names masked, map links, codes in words, alerts", () => {
  assert.equal(maskName("李雷"), "李*");
  assert.equal(maskName("欧阳娜娜"), "欧***");
  assert.equal(mapLink({ lat: 31.23, lon: 121.47, address: "人民路 18 号" }), "geo:31.23,121.47?q=31.23,121.47(%E4%BA%BA%E6%B0%91%E8%B7%AF%2018%20%E5%8F%B7)");
  assert.equal(mapLink({ address: "A" }), "geo:0,0?q=A");
  assert.equal(codeText("task_closed"), "任务已结束或已取消，不能再预约");
  assert.equal(codeText("brand_new_code"), "服务器拒绝（代码 brand_new_code）");
  const keys = alerts({ status: "assigned", needs_review: true, gift_description: "杯子", pin_required: true,
    promise: { state: "at_risk", at_risk: true, promised_at: "2999-01-01T00:00:00Z" } },
  [{ state: "pending" }, { state: "rejected" }]).map(([key]) => key);
  assert.deepEqual(keys, ["alert.review", "alert.gift", "alert.pin", "alert.promise.risk", "alert.pending", "alert.rejected"]);
});
