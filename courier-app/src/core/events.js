// What screens listen to. Lives apart from sync.js so queue.js can announce a queued op without a cycle.

/** Fires `change` (something the screens show changed) and `status` ({pending, rejected, lastSync, error}). */
export const syncEvents = new EventTarget();

const CHANNEL = "fieldops-sync";
// The page and the service worker are separate worlds: a BroadcastChannel carries each one's news to the other.
const channel = typeof globalThis.BroadcastChannel === "function" ? new globalThis.BroadcastChannel(CHANNEL) : null;
if (channel) {
  channel.onmessage = (event) => {
    const { type, detail } = event.data || {};
    if (type === "change" || type === "status") syncEvents.dispatchEvent(new CustomEvent(type, { detail }));
  };
  // Node's BroadcastChannel keeps the process alive; a page's does not matter.
  channel.unref?.();
}

/**
 * Tell this context's listeners and the other contexts (page ⇄ service worker).
 * @param {"change"|"status"} type
 * @param {object} [detail]
 */
export function announce(type, detail = {}) {
  syncEvents.dispatchEvent(new CustomEvent(type, { detail }));
  try {
    channel?.postMessage({ type, detail });
  } catch {
    // A detail that cannot be cloned only loses the other contexts' copy.
  }
}
