// The door's words: every key in both languages; the camera's size arithmetic; the signature's ink check.
import { test } from "node:test";
import assert from "node:assert/strict";
import { doorWords } from "../src/ui/screens/door-words.js";
import { readFileSync } from "node:fs";

test("every door and pickup word exists in Chinese and English", () => {
  assert.deepEqual(Object.keys(doorWords.zh).sort(), Object.keys(doorWords.en).sort());
  for (const [key, text] of Object.entries(doorWords.en)) assert.ok(text.trim(), key);
});

test("every word key the door and pickup screens use is registered", () => {
  const src = ["door.js", "pickup.js"].map((f) => readFileSync(new URL(`../src/ui/screens/${f}`, import.meta.url), "utf8")).join("\n");
  const used = [...src.matchAll(/\bt\("((?:door|pickup)\.[a-z_.]+)"/g)].map((m) => m[1]);
  const reasons = [...src.matchAll(/reasonText\("([a-z_]+)"/g)].map((m) => `door.reason.${m[1]}`);
  for (const key of [...used, ...reasons]) assert.ok(key in doorWords.zh, key);
});

test("a photo's longer side is scaled to at most 1600 px, never enlarged", async () => {
  const { fitWithin } = await import("../src/ui/camera.js");
  assert.deepEqual(fitWithin(4032, 3024), { width: 1600, height: 1200 });
  assert.deepEqual(fitWithin(3024, 4032), { width: 1200, height: 1600 });
  assert.deepEqual(fitWithin(800, 600), { width: 800, height: 600 });
});

test("a signature needs ink: a stroke that moves", async () => {
  const { hasInk } = await import("../src/ui/signature.js");
  assert.equal(hasInk([]), false);
  assert.equal(hasInk([[[10, 10]]]), false);
  assert.equal(hasInk([[[10, 10], [10, 10]]]), false);
  assert.equal(hasInk([[[10, 10], [30, 12]]]), true);
});
