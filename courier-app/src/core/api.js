// The only place the app talks HTTP: /api/v1 of the app's own origin (the CSP allows 'self' only).
// Every answer becomes a value or one of two errors, so callers branch on status and code, never on text.

/** The protocol version this app speaks (the `Fieldops-Protocol` header). */
export const PROTOCOL_VERSION = "1";

/** The server answered with a problem (RFC 9457); `code` is its stable code. */
export class ApiError extends Error {
  /**
   * @param {{status: number, code: string, retryAfter: number|null, problem: object|null}} fields
   */
  constructor({ status, code, retryAfter = null, problem = null }) {
    super(problem?.detail || problem?.title || `HTTP ${status} ${code}`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    this.problem = problem;
  }
}

/**
 * No answer: the network is down, the request timed out, or the answer was cut off. The request may or
 * may not have reached the server; resending it unchanged is safe (the server applies a push once).
 */
export class OfflineError extends Error {
  /** @param {string} message @param {{timeout?: boolean, cause?: unknown}} [options] */
  constructor(message, { timeout = false, cause } = {}) {
    super(message, { cause });
    this.name = "OfflineError";
    this.timeout = timeout;
  }
}

function retryAfterOf(response, problem) {
  const header = response.headers.get("Retry-After");
  if (header !== null && header.trim() !== "" && !Number.isNaN(Number(header))) return Number(header);
  if (header) {
    // An HTTP date (the server sends seconds, a proxy might not).
    const at = Date.parse(header);
    if (!Number.isNaN(at)) return Math.max(0, (at - Date.now()) / 1000);
  }
  const body = problem?.retry_after;
  return typeof body === "number" ? body : null;
}

/**
 * The API client. Screens do not call it directly: they call device.js and sync.js, which do.
 * @param {{base?: string, fetch?: typeof fetch, getToken?: () => (string|null|Promise<string|null>),
 *   timeoutMs?: number}} [options] base: "/api/v1" of the app's origin (absolute in Node tests);
 *   timeoutMs: how long one request may take before it counts as no answer
 * @returns {{enroll: Function, push: Function, pull: Function, headAttachment: Function,
 *   putAttachment: Function, request: Function}}
 */
export function createApi({ base = "/api/v1", fetch: fetchImpl, getToken = () => null, timeoutMs = 30_000 } = {}) {
  const doFetch = fetchImpl ?? ((...args) => globalThis.fetch(...args));
  const root = base.replace(/\/+$/, "");

  /**
   * One request. `protocol` adds Fieldops-Protocol; `auth` the device's Bearer token.
   * @returns {Promise<{status: number, body: any, headers: Headers}>}
   */
  async function request(method, path, { json, body, contentType, protocol = false, auth = true, query } = {}) {
    const headers = { Accept: "application/json, application/problem+json" };
    if (protocol) headers["Fieldops-Protocol"] = PROTOCOL_VERSION;
    if (auth) {
      const token = await getToken();
      if (token) headers.Authorization = `Bearer ${token}`;
    }
    let payload = body;
    if (json !== undefined) {
      payload = JSON.stringify(json);
      headers["Content-Type"] = "application/json";
    } else if (contentType) {
      headers["Content-Type"] = contentType;
    }
    const qs = query ? new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined && v !== null))
      .toString() : "";
    const url = root + path + (qs ? `?${qs}` : "");
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    let response;
    let text;
    try {
      response = await doFetch(url, { method, headers, body: payload, signal: controller.signal,
        credentials: "omit", cache: "no-store" });
      // Read the whole body under the same timeout: an answer cut off half-way is no answer.
      text = method === "HEAD" ? "" : await response.text();
    } catch (err) {
      throw new OfflineError(`${method} ${path}: ${controller.signal.aborted ? "timed out" : "no answer"}`,
        { timeout: controller.signal.aborted, cause: err });
    } finally {
      clearTimeout(timer);
    }
    let parsed = null;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = null; // not JSON (a proxy's error page): the status still says what happened
      }
    }
    if (response.status >= 400) {
      const problem = parsed && typeof parsed === "object" ? parsed : null;
      throw new ApiError({ status: response.status, code: problem?.code || `http_${response.status}`,
        retryAfter: retryAfterOf(response, problem), problem });
    }
    return { status: response.status, body: parsed, headers: response.headers };
  }

  return {
    request,
    /** POST /devices/enroll → {device_id, courier_id, token}. */
    async enroll({ code, device_name }) {
      return (await request("POST", "/devices/enroll", { json: { code, device_name }, auth: false })).body;
    },
    /** POST /sync/push → the push answer (results, last_seq, …). */
    async push(batch) {
      return (await request("POST", "/sync/push", { json: batch, protocol: true })).body;
    },
    /** GET /sync/pull → a page {changes, cursor, has_more, last_seq, scope?, reset?}. */
    async pull({ cursor = null, limit } = {}) {
      return (await request("GET", "/sync/pull", { query: { cursor, limit }, protocol: true })).body;
    },
    /** HEAD /attachments/{sha256} → true if the server holds it. */
    async headAttachment(sha256) {
      try {
        await request("HEAD", `/attachments/${sha256}`, { protocol: true });
        return true;
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) return false;
        throw err;
      }
    },
    /** PUT /attachments/{sha256} with the bytes → 201 stored or 200 already there. */
    async putAttachment(sha256, blob) {
      const res = await request("PUT", `/attachments/${sha256}`,
        { body: blob, contentType: "application/octet-stream", protocol: true });
      return res.status;
    },
  };
}
