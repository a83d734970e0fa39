// The screens' one store and api (the core's contract, docs/app.md): opened once, shared by every screen.
import { openStore, getMeta } from "../core/store.js";
import { t } from "./i18n.js";
import { createApi } from "../core/api.js";

let opened = null;

/** {store, api}: the device's IndexedDB and the protocol client speaking to the server that serves this app. */
export function session() {
  if (!opened) {
    opened = openStore().then((store) => ({
      store,
      api: createApi({ base: "/api/v1", fetch: (...args) => fetch(...args), getToken: () => getMeta(store, "token") }),
    }));
  }
  return opened;
}

/** An entity record's data (the store keeps {entity, id, version, data}). */
export const dataOf = (record) => (record && record.data ? { ...record.data, version: record.version ?? record.data.version } : record);

import { syncOnce } from "../core/sync.js";
import { pendingOps } from "../core/queue.js";

/** Sync now (the screens' buttons): the core's syncOnce; {pushed, rejected, pulled, error (a code or null)}. */
export async function syncNow() {
  const { store, api } = await session();
  try {
    const first = await syncOnce(store, api, { now: new Date() });
    // A round already running when the courier pressed joins the press, but it may have read the queue before their
    // last step was queued (begun just before the network went, answered when it came back): "synced, 0 sent"
    // with the step still pending. What is still pending after a round that went well goes in a round of its own.
    if (first.error || !(await pendingOps(store)).length) return first;
    const again = await syncOnce(store, api, { now: new Date() });
    return { ...again, pushed: (first.pushed || 0) + (again.pushed || 0), pulled: (first.pulled || 0) + (again.pulled || 0),
      rejected: (first.rejected || 0) + (again.rejected || 0) };
  } catch (error) {
    return { error: error?.code || "internal_error" };
  }
}

let flashed = null;
/** A short message (a word's key and params) for the next draws of the screen ("saved, to sync"), for 5 seconds. */
export function flash(key, params = {}) {
  flashed = { key, params, until: Date.now() + 5000 };
}
/** The flashed message in the current language, or "". */
export function flashText() {
  return flashed && flashed.until > Date.now() ? t(flashed.key, flashed.params) : "";
}
