// The handover PIN, checked offline: the task carries only a salted hash (docs/protocol.md, "The handover state
// on a task"); the server checks the PIN again on push, which is what the PIN really rests on.

const encoder = new TextEncoder();

/**
 * Whether the PIN the recipient gives matches the task's: hex(PBKDF2-HMAC-SHA256(pin as UTF-8, salt as UTF-8
 * text, the task's iterations, 32 bytes)) equals the stored hash. WebCrypto, so it runs in the page, the
 * service worker and Node alike.
 * @param {string} pin what the recipient said (six digits; anything else never matches)
 * @param {{algorithm: string, salt: string, hash: string, iterations: number}} pinState task.handover.pin
 * @returns {Promise<boolean>}
 * @throws {TypeError} no PIN state, or an algorithm this app does not know (update the app)
 */
export async function pinMatches(pin, pinState) {
  if (!pinState) throw new TypeError("This task has no handover PIN.");
  if (pinState.algorithm !== "pbkdf2_sha256") throw new TypeError(`Unknown PIN algorithm ${pinState.algorithm}`);
  // The server's schema takes six digits only: anything else would be refused on push anyway.
  if (typeof pin !== "string" || !/^\d{6}$/.test(pin)) return false;
  const key = await globalThis.crypto.subtle.importKey("raw", encoder.encode(pin), "PBKDF2", false, ["deriveBits"]);
  const bits = await globalThis.crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: encoder.encode(pinState.salt), iterations: pinState.iterations },
    key, 256);
  const hex = [...new Uint8Array(bits)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const want = String(pinState.hash).toLowerCase();
  // Compare every character whatever the first difference (no early exit to time).
  let diff = hex.length ^ want.length;
  for (let i = 0; i < hex.length; i += 1) diff |= hex.charCodeAt(i) ^ (want.charCodeAt(i) || 0);
  return diff === 0;
}
