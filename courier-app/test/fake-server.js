// A small in-memory Fieldops server for the sync tests: push, pull and attachments as docs/protocol.md says
// (seq and op_id exactly once, duplicates, expected_seq, stops, conflicts, paged pulls with scope checksum,
// reset), plus faults to inject (503 with Retry-After, an answer lost after the commit, 401, …).
import { createHash } from "node:crypto";

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");
const json = (status, body, headers = {}) => new Response(JSON.stringify(body), {
  status, headers: { "Content-Type": status >= 400 ? "application/problem+json" : "application/json", ...headers } });
const problem = (status, code, headers = {}, extra = {}) => json(status, { status, code, title: code, ...extra }, headers);

export class FakeServer {
  constructor() {
    this.token = "fod_test";
    this.companyName = null; // FIELDOPS_COMPANY_NAME: on every pull page
    this.deviceId = "d-1";
    this.lastSeq = 0;
    this.timezone = "Asia/Shanghai"; // FIELDOPS_TIMEZONE: every pull page names it
    this.taken = new Map(); // seq -> {fingerprint, result}
    this.opIds = new Map(); // op_id -> {fingerprint, result}
    this.entities = new Map(); // "entity:id" -> {entity, id, version, data, deleted}
    this.log = []; // change feed: keys in change order
    this.attachments = new Set();
    this.faults = []; // consumed in order by matching requests
    this.requests = [];
    this.applied = []; // op_ids in the order they took effect
    this.fetch = this.fetch.bind(this);
  }

  /** Add or change an entity as dispatch would (a new version, a change in the feed). */
  put(entity, id, data = {}) {
    const key = `${entity}:${id}`;
    const held = this.entities.get(key);
    const version = (held?.version ?? 0) + 1;
    this.entities.set(key, { entity, id, version, deleted: false, data: { id, ...held?.data, ...data, version } });
    this.log.push(key);
    return version;
  }

  remove(entity, id) {
    const key = `${entity}:${id}`;
    const held = this.entities.get(key);
    this.entities.set(key, { entity, id, version: (held?.version ?? 0) + 1, deleted: true });
    this.log.push(key);
  }

  scope() {
    const lines = [...this.entities.values()].filter((e) => !e.deleted).map((e) => `${e.entity}:${e.id}:${e.version}`)
      .sort();
    return { count: lines.length, checksum: sha256(lines.join("\n")) };
  }

  /** Queue a fault for the next request matching `path` (a substring) and `method`. */
  fault(match, fault) {
    this.faults.push({ ...match, ...fault });
  }

  takeFault(method, path) {
    const i = this.faults.findIndex((f) => (!f.method || f.method === method) && (!f.path || path.includes(f.path)));
    return i < 0 ? null : this.faults.splice(i, 1)[0];
  }

  async fetch(url, init = {}) {
    const u = new URL(url, "http://fake.test");
    const method = init.method ?? "GET";
    const headers = init.headers ?? {};
    this.requests.push({ method, path: u.pathname, search: u.search, headers, body: init.body });
    const fault = this.takeFault(method, u.pathname);
    if (fault?.network) throw new TypeError("Failed to fetch");
    if (fault?.status) return problem(fault.status, fault.code, fault.headers ?? {}, fault.body ?? {});
    if (headers["Fieldops-Protocol"] !== "1") return problem(426, "protocol_unsupported");
    if (headers.Authorization !== `Bearer ${this.token}`) return problem(401, "unauthorized");
    let response;
    if (u.pathname.endsWith("/sync/push")) response = this.push(JSON.parse(init.body), fault);
    else if (u.pathname.endsWith("/sync/pull")) response = this.pull(u.searchParams, fault);
    else if (u.pathname.includes("/attachments/")) response = await this.attachment(method, u.pathname, init.body);
    else response = problem(404, "not_found");
    if (fault?.dropAfterCommit) throw new TypeError("network lost after the commit");
    return response;
  }

  async attachment(method, path, body) {
    const name = path.split("/").pop();
    if (method === "HEAD") return new Response(null, { status: this.attachments.has(name) ? 200 : 404 });
    const bytes = Buffer.from(await body.arrayBuffer());
    if (sha256(bytes) !== name) return problem(422, "hash_mismatch");
    if (bytes.toString().includes("<script")) return problem(422, "unsafe_svg");
    const had = this.attachments.has(name);
    this.attachments.add(name);
    return json(had ? 200 : 201, { sha256: name });
  }

  push(body, fault) {
    if (body.device_id !== this.deviceId) return problem(403, "device_mismatch");
    if (body.ops.length > 500) return problem(422, "validation_failed");
    const results = [];
    const answer = { results, server_time: new Date().toISOString() };
    for (const op of [...body.ops].sort((a, b) => a.seq - b.seq)) {
      const fingerprint = JSON.stringify([op.op_id, op.type, op.entity_id, op.base_version, op.payload]);
      if (op.seq <= this.lastSeq) {
        const first = this.taken.get(op.seq);
        results.push(first.fingerprint === fingerprint ? { ...first.result, duplicate: true }
          : { seq: op.seq, op_id: op.op_id, status: "rejected", code: "seq_reused", detail: null, entity: null });
        continue;
      }
      if (op.seq > this.lastSeq + 1) {
        answer.expected_seq = this.lastSeq + 1;
        break;
      }
      if (fault?.stopAtSeq === op.seq) {
        Object.assign(answer, { stopped_at: op.seq, retry_after: fault.retryAfter ?? 5, stop_code: "busy" });
        break;
      }
      const missing = (op.payload?.photos ?? []).filter((sha) => !this.attachments.has(sha));
      if (missing.length) {
        Object.assign(answer, { stopped_at: op.seq, retry_after: 5, stop_code: "attachment_missing" });
        break;
      }
      let result;
      const firstById = this.opIds.get(op.op_id);
      if (firstById) {
        result = firstById.fingerprint === fingerprint ? { ...firstById.result, seq: op.seq, duplicate: true }
          : { seq: op.seq, op_id: op.op_id, status: "rejected", code: "op_id_reused", detail: null, entity: null };
      } else {
        result = this.apply(op);
        this.opIds.set(op.op_id, { fingerprint, result });
      }
      this.taken.set(op.seq, { fingerprint, result });
      this.lastSeq = op.seq;
      results.push(result);
    }
    answer.last_seq = this.lastSeq;
    return json(200, answer);
  }

  apply(op) {
    const base = { seq: op.seq, op_id: op.op_id, detail: null };
    if (op.type === "test.reject") return { ...base, status: "rejected", code: "wait_too_short", entity: null };
    const key = `task:${op.entity_id}`;
    const task = this.entities.get(key);
    if (!task || task.deleted) return { ...base, status: "rejected", code: "not_assigned", entity: null };
    const stale = op.base_version < (task.data.dispatch_version ?? 0);
    const change = op.type === "stop.arrive" ? { status: "arrived", arrived_at: op.device_time }
      : { notes: [{ text: op.payload.text, device_time: op.device_time }, ...(task.data.notes ?? [])] };
    this.put("task", op.entity_id, change);
    this.applied.push(op.op_id);
    const now = this.entities.get(key);
    return { ...base, status: stale ? "conflict" : "applied", code: stale ? "stale_version" : null,
      entity: { entity: "task", id: op.entity_id, version: now.version, deleted: false, data: now.data } };
  }

  pull(params, fault) {
    const limit = Number(params.get("limit") ?? 500);
    const cursor = params.get("cursor");
    const page = { last_seq: this.lastSeq, timezone: this.timezone };
    if (cursor && (fault?.reset || !/^[LC]\d+(:\d+)?$/.test(cursor))) {
      return json(200, { changes: [], cursor: null, has_more: true, reset: true, last_seq: this.lastSeq,
        timezone: this.timezone });
    }
    let changes;
    if (!cursor || cursor.startsWith("L")) {
      // The listing: the whole scope by entity then id, then the feed from where the listing began.
      const [offset, from] = cursor ? cursor.slice(1).split(":").map(Number) : [0, this.log.length];
      const all = [...this.entities.values()].filter((e) => !e.deleted)
        .sort((a, b) => (a.entity + a.id < b.entity + b.id ? -1 : 1));
      changes = all.slice(offset, offset + limit);
      const more = offset + limit < all.length;
      page.cursor = more ? `L${offset + limit}:${from}` : `C${from}`;
      page.has_more = more || from < this.log.length;
    } else {
      const from = Number(cursor.slice(1));
      const keys = [];
      let end = from;
      while (end < this.log.length && keys.length < limit) {
        if (!keys.includes(this.log[end])) keys.push(this.log[end]);
        end += 1;
      }
      changes = keys.map((k) => this.entities.get(k));
      page.cursor = `C${end}`;
      page.has_more = end < this.log.length;
    }
    page.changes = changes.map((e) => (e.deleted ? { entity: e.entity, id: e.id, version: e.version, deleted: true }
      : { entity: e.entity, id: e.id, version: e.version, deleted: false, data: e.data }));
    if (!page.has_more) {
      page.scope = this.scope();
      if (fault?.badChecksum) page.scope = { ...page.scope, checksum: "0".repeat(64) };
    }
    page.company = { name: this.companyName };
    return json(200, page);
  }
}
