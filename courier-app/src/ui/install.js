// The page's side of the service worker: register /app/sw.js (scope /app/) and ask for Background Sync. Where
// the browser has no Background Sync (Firefox, Safari) the core's startAutoSync syncs on focus, when the
// network returns and on a timer instead; where it has no service worker at all (not a secure context: a LAN
// address over plain http) the app still runs, only not offline from a cold start.
import { registerBackgroundSync } from "../core/sync.js";

export const WORKER_URL = "/app/sw.js";
export const SCOPE = "/app/";

/**
 * Register the service worker and the Background Sync tag.
 * @param {{navigator?: Navigator, secure?: boolean}} [env] the browser's (tests give their own)
 * @returns {Promise<ServiceWorkerRegistration|null>} null where there is no service worker
 */
export async function installWorker({ navigator = globalThis.navigator, secure = globalThis.isSecureContext } = {}) {
  if (!secure || !navigator?.serviceWorker) return null;
  try {
    const registration = await navigator.serviceWorker.register(WORKER_URL, { scope: SCOPE });
    await registerBackgroundSync();
    return registration;
  } catch (error) {
    console.warn("service worker not registered:", error); // the app still works online
    return null;
  }
}
