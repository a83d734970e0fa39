// The depot's time zone comes from the server (every pull page's `timezone`): Asia/Shanghai until a pull names one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { freshStore } from "./helpers.js";
import { FakeServer } from "./fake-server.js";
import { createApi } from "../src/core/api.js";
import { getMeta, setMeta } from "../src/core/store.js";
import { loadDepotTimeZone, syncOnce } from "../src/core/sync.js";
import { depotTimeZone, formatClock, formatWindow, setDepotTimeZone } from "../src/core/time.js";
import { depotDate, hhmm } from "../src/ui/format.js";
import { depotDay } from "../src/ui/checks.js";

const EVENING = "2026-12-07T20:00:00Z"; // 04:00 on the 8th in Shanghai, 21:00 on the 7th in Berlin

async function phone(server) {
  const store = await freshStore();
  await setMeta(store, "token", server.token);
  await setMeta(store, "device_id", server.deviceId);
  const api = createApi({ base: "http://fake.test/api/v1", fetch: server.fetch, getToken: () => getMeta(store, "token") });
  return { store, sync: () => syncOnce(store, api, { now: new Date(EVENING), sleep: async () => {}, random: () => 0.5 }) };
}

test("before the first pull the depot is Asia/Shanghai; a pull naming Berlin moves every display and 'today'", async (t) => {
  t.after(() => setDepotTimeZone("Asia/Shanghai"));
  assert.equal(depotTimeZone(), "Asia/Shanghai");
  assert.equal(formatClock(EVENING), "04:00");
  assert.equal(depotDay(EVENING), "2026-12-08");
  const server = new FakeServer();
  server.timezone = "Europe/Berlin";
  server.put("task", "t-1", { status: "assigned" });
  const { store, sync } = await phone(server);
  assert.equal((await sync()).error, null);
  assert.equal(await getMeta(store, "timezone"), "Europe/Berlin");
  assert.equal(depotTimeZone(), "Europe/Berlin");
  assert.equal(formatClock(EVENING), "21:00");
  assert.equal(formatWindow({ start: EVENING, end: "2026-12-07T21:30:00Z" }), "21:00–22:30");
  assert.equal(hhmm(EVENING), "21:00");
  assert.equal(depotDate(EVENING), "2026-12-07");
  assert.equal(depotDay(EVENING), "2026-12-07");
});

test("a restart takes the zone the last pull stored; a fresh phone and an unknown name keep Shanghai", async (t) => {
  t.after(() => setDepotTimeZone("Asia/Shanghai"));
  const fresh = await freshStore();
  await loadDepotTimeZone(fresh);
  assert.equal(depotTimeZone(), "Asia/Shanghai");
  const server = new FakeServer();
  server.timezone = "Asia/Urumqi";
  const { store, sync } = await phone(server);
  await sync();
  setDepotTimeZone("Asia/Shanghai"); // the page is gone: a restart begins with the fallback
  await loadDepotTimeZone(store);
  assert.equal(depotTimeZone(), "Asia/Urumqi");
  assert.equal(formatClock(EVENING), "02:00");
  assert.equal(setDepotTimeZone("Mars/Olympus_Mons"), false);
  assert.equal(setDepotTimeZone(null), false);
  assert.equal(depotTimeZone(), "Asia/Urumqi");
});
