// The service worker: the app shell from its cache (the app starts offline), the API never cached, and
// Background Sync running the core's sync round. Built by vite.config.js (swPlugin) as /app/sw.js, one classic
// script, with this build's file list and version put in place of __PRECACHE__ and __BUILD_VERSION__.
import { SYNC_TAG, syncFromWorker } from "./core/sync.js";

/* global __PRECACHE__, __BUILD_VERSION__ */
const VERSION = __BUILD_VERSION__;
const PRECACHE = __PRECACHE__; // "/app/", every hashed asset, the manifest and icons of THIS build
const PREFIX = "fieldops-app-";
const CACHE = PREFIX + VERSION;
const SHELL = "/app/";
const SHELL_TIMEOUT_MS = 3000; // a slow network (a basement, a lift) gets the cached shell after this

self.addEventListener("install", (event) => {
  // Fetched past the HTTP cache: the precache is exactly this build's files. skipWaiting: docs/decisions.md.
  event.waitUntil(caches.open(CACHE)
    .then((cache) => cache.addAll(PRECACHE.map((url) => new Request(url, { cache: "reload" }))))
    .then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((key) => key.startsWith(PREFIX) && key !== CACHE)
      .map((key) => caches.delete(key))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  // Only the app's own files: the API (/api/…, sync answers above all) and anything else go to the network
  // untouched and are never cached.
  if (request.method !== "GET" || url.origin !== self.location.origin || !url.pathname.startsWith(SHELL)) return;
  if (request.mode === "navigate") event.respondWith(shell(event, url));
  else if (url.pathname.startsWith(SHELL + "assets/")) event.respondWith(cacheFirst(request));
  else event.respondWith(networkFirst(request));
});

/** A navigation: the network's shell within SHELL_TIMEOUT_MS (kept for next time), else the cached one. */
async function shell(event, url) {
  const cache = await caches.open(CACHE);
  const isShell = url.pathname === SHELL;
  const fromNetwork = fetch(event.request).then((response) => {
    if (isShell && response.ok) event.waitUntil(cache.put(SHELL, response.clone()));
    return response;
  });
  const timeout = new Promise((resolve) => setTimeout(resolve, SHELL_TIMEOUT_MS, null));
  try {
    const response = await Promise.race([fromNetwork, timeout]);
    if (response) return response;
  } catch {
    // offline: the cached shell below
  }
  const cached = isShell ? await cache.match(SHELL) : await cache.match(url.pathname);
  if (cached) return cached;
  return fromNetwork; // nothing cached: the network's answer (or its error) whenever it comes
}

/** A hashed asset never changes under its name: the cache's copy, else the network's (then kept). */
async function cacheFirst(request) {
  const cached = await caches.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) {
    const cache = await caches.open(CACHE);
    await cache.put(request, response.clone());
  }
  return response;
}

/** The manifest, icons: the network's when there is one, else the cached copy. */
async function networkFirst(request) {
  try {
    return await fetch(request);
  } catch (error) {
    const cached = await caches.match(request, { ignoreSearch: true });
    if (cached) return cached;
    throw error;
  }
}

self.addEventListener("sync", (event) => {
  // Rejecting (still offline) makes the browser fire the sync event again later.
  if (event.tag === SYNC_TAG) event.waitUntil(syncFromWorker());
});

self.addEventListener("message", (event) => {
  if (event.data?.type === "version") event.source?.postMessage({ type: "version", version: VERSION });
});
