// Shared by the unit tests: a fresh IndexedDB database per test (fake-indexeddb in Node).
import "fake-indexeddb/auto";
import { openStore } from "../src/core/store.js";

let counter = 0;

/** A new, empty device database. */
export function freshStore() {
  counter += 1;
  return openStore(`test-${process.pid}-${counter}-${Math.random().toString(36).slice(2)}`);
}
