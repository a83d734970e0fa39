// The device's own database (IndexedDB through idb): the token, the queue, the blobs, the pulled scope.
// No DOM here: the service worker opens the same database to sync in the background.
import { openDB } from "idb";

/** The schema version; each later version adds its own step in upgrade() (never edit an earlier one). */
export const DB_VERSION = 1;

/**
 * Open (or create, or upgrade) the device's database.
 * @param {string} [name] database name (tests use a fresh one each)
 * @returns {Promise<import("idb").IDBPDatabase>}
 */
export function openStore(name = "fieldops") {
  return openDB(name, DB_VERSION, {
    upgrade(db, oldVersion) {
      // Steps run in order from the version the device has, so a phone skipping releases still upgrades.
      if (oldVersion < 1) {
        db.createObjectStore("meta"); // key -> value: token, device_id, courier_id, next_seq, cursor, last_sync …
        const entities = db.createObjectStore("entities", { keyPath: ["entity", "id"] });
        entities.createIndex("entity", "entity");
        const queue = db.createObjectStore("queue", { keyPath: "seq" });
        queue.createIndex("state", "state");
        queue.createIndex("entity_id", "entity_id");
        db.createObjectStore("blobs", { keyPath: "sha256" });
        db.createObjectStore("drafts");
      }
    },
    blocking() {
      // Another tab (or the service worker) opens a newer version: let it, this copy is stale.
      // The page reloads into the new version on its next navigation.
    },
  });
}

/**
 * A meta value.
 * @param {import("idb").IDBPDatabase} store
 * @param {string} key
 * @param {*} [fallback] returned when the key is not set
 */
export async function getMeta(store, key, fallback = undefined) {
  const value = await store.get("meta", key);
  return value === undefined ? fallback : value;
}

/**
 * Set a meta value; null or undefined removes the key.
 * @param {import("idb").IDBPDatabase} store
 * @param {string} key
 * @param {*} value
 */
export async function setMeta(store, key, value) {
  if (value === undefined || value === null) await store.delete("meta", key);
  else await store.put("meta", value, key);
}

/**
 * One pulled entity `{entity, id, version, data}`, or undefined if the device does not hold it.
 * @param {import("idb").IDBPDatabase} store
 * @param {string} entity "task", "vehicle", "courier", "checklist_template"
 * @param {string} id
 */
export function getEntity(store, entity, id) {
  return store.get("entities", [entity, id]);
}

/**
 * Every pulled entity of one kind.
 * @param {import("idb").IDBPDatabase} store
 * @param {string} entity
 * @returns {Promise<Array<{entity: string, id: string, version: number, data: object}>>}
 */
export function listEntities(store, entity) {
  return store.getAllFromIndex("entities", "entity", entity);
}

/**
 * A screen's unfinished input (kept so a reload in the middle of a handover loses nothing).
 * @param {import("idb").IDBPDatabase} store
 * @param {string} key
 */
export function getDraft(store, key) {
  return store.get("drafts", key);
}

/**
 * Keep a screen's unfinished input.
 * @param {import("idb").IDBPDatabase} store
 * @param {string} key
 * @param {*} value any structured-cloneable value
 */
export async function setDraft(store, key, value) {
  await store.put("drafts", value, key);
}

/**
 * Forget a screen's draft (the step was queued or abandoned).
 * @param {import("idb").IDBPDatabase} store
 * @param {string} key
 */
export async function clearDraft(store, key) {
  await store.delete("drafts", key);
}
