// The platform's pieces that run in Node: the build's precache list and version, and the worker's registration.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { precacheOf } from "../vite.config.js";
import { installWorker, SCOPE, WORKER_URL } from "../src/ui/install.js";

function fakeBuild(files) {
  const dir = mkdtempSync(join(tmpdir(), "fieldops-dist-"));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

const BUILD = { "index.html": "<!doctype html>", "assets/index-a1.js": "1", "assets/index-b2.css": "2",
  "manifest.webmanifest": "{}", "icons/icon-192.png": "png", "sw.js": "old worker", "assets/index-a1.js.map": "{}" };

test("the precache holds the shell as /app/ and every file of the build but the worker and source maps", () => {
  const { urls } = precacheOf(fakeBuild(BUILD));
  assert.deepEqual(urls, ["/app/assets/index-a1.js", "/app/assets/index-b2.css", "/app/icons/icon-192.png",
    "/app/", "/app/manifest.webmanifest"]);
});

test("the version changes with any file's bytes and only then", () => {
  const first = precacheOf(fakeBuild(BUILD)).version;
  assert.equal(precacheOf(fakeBuild(BUILD)).version, first);
  assert.equal(precacheOf(fakeBuild({ ...BUILD, "sw.js": "another worker" })).version, first);
  assert.notEqual(precacheOf(fakeBuild({ ...BUILD, "index.html": "<!doctype html><p>" })).version, first);
  assert.notEqual(precacheOf(fakeBuild({ ...BUILD, "assets/index-c3.js": "3" })).version, first);
});

test("the worker is registered at /app/sw.js with the scope /app/", async () => {
  const calls = [];
  const navigator = { serviceWorker: { register: async (url, options) => (calls.push([url, options]), { scope: SCOPE }) } };
  const registration = await installWorker({ navigator, secure: true });
  assert.deepEqual(registration, { scope: SCOPE });
  assert.deepEqual(calls, [[WORKER_URL, { scope: SCOPE }]]);
});

test("no service worker where the context is not secure or the browser has none; a refusal is not an error", async () => {
  const calls = [];
  const navigator = { serviceWorker: { register: async (url) => calls.push(url) } };
  assert.equal(await installWorker({ navigator, secure: false }), null);
  assert.equal(await installWorker({ navigator: {}, secure: true }), null);
  assert.deepEqual(calls, []);
  const refusing = { serviceWorker: { register: async () => { throw new Error("SecurityError"); } } };
  const warn = console.warn;
  console.warn = () => {};
  try {
    assert.equal(await installWorker({ navigator: refusing, secure: true }), null);
  } finally {
    console.warn = warn;
  }
});
