// Display helpers of the screens: money in yuan from fen, times in the depot's time zone (the server's
// FIELDOPS_TIMEZONE, named by every pull page: core/time.js depotTimeZone).
import { depotTimeZone } from "../core/time.js";

const parts = (date, options) => Object.fromEntries(
  new Intl.DateTimeFormat("en-GB", { timeZone: depotTimeZone(), hourCycle: "h23", ...options })
    .formatToParts(date).map((p) => [p.type, p.value]));

/** 12345 fen → "¥123.45". */
export function yuan(fen) {
  if (fen === null || fen === undefined) return "";
  const sign = fen < 0 ? "-" : "";
  const abs = Math.abs(Math.trunc(fen));
  return `${sign}¥${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}

/** A time the screens can show, or null: an unreadable one (a bad value in the data) is shown as nothing, never
 * thrown (Intl throws a RangeError on an invalid date, which would leave the whole screen blank). */
function readable(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** An RFC 3339 time → "HH:MM" in depot time ("" when there is none or it cannot be read). */
export function hhmm(iso) {
  const date = iso ? readable(iso) : null;
  if (!date) return "";
  const p = parts(date, { hour: "2-digit", minute: "2-digit" });
  return `${p.hour}:${p.minute}`;
}

/** An RFC 3339 time → "YYYY-MM-DD" in depot time (today without one; "" when it cannot be read). */
export function depotDate(iso) {
  const date = iso ? readable(iso) : new Date();
  if (!date) return "";
  const p = parts(date, { year: "numeric", month: "2-digit", day: "2-digit" });
  return `${p.year}-${p.month}-${p.day}`;
}

/** "MM-DD HH:MM" in depot time (the day shown when it is not today). */
export function when(iso) {
  if (!iso || !readable(iso)) return "";
  const day = depotDate(iso);
  return day === depotDate() ? hhmm(iso) : `${day.slice(5)} ${hhmm(iso)}`;
}

/** A window {start, end} → "HH:MM–HH:MM" (with the day when not today). */
export function windowText(window) {
  if (!window || !window.start || !readable(window.start)) return "";
  const day = depotDate(window.start);
  const prefix = day === depotDate() ? "" : `${day.slice(5)} `;
  return `${prefix}${hhmm(window.start)}–${hhmm(window.end)}`;
}

/** The depot's UTC offset in minutes at a given instant. */
function offsetMinutes(date) {
  const p = parts(date, { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return Math.round((asUtc - Math.floor(date.getTime() / 1000) * 1000) / 60000);
}

/** A depot-local date ("2026-12-07") and time ("14:30") → RFC 3339 with the depot's offset, or null if unreadable. */
export function depotIso(date, time) {
  const d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date || "");
  const tm = /^(\d{2}):(\d{2})$/.exec(time || "");
  if (!d || !tm) return null;
  const naive = Date.UTC(+d[1], +d[2] - 1, +d[3], +tm[1], +tm[2]);
  const offset = offsetMinutes(new Date(naive - offsetMinutes(new Date(naive)) * 60000));
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  return `${date}T${time}:00${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

/**
 * A link taken from the data (a receipt page's address) as an href, or null: only http(s), so no `javascript:`,
 * `data:` or other scheme a bad or tampered value could carry reaches an <a> (the CSP blocks a script URL too;
 * this keeps the link from being offered at all).
 * @param {unknown} url
 * @returns {string|null}
 */
export function safeHref(url) {
  if (typeof url !== "string" || !url.trim()) return null;
  try {
    const parsed = new URL(url, globalThis.location?.href ?? "http://localhost/");
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
  } catch {
    return null;
  }
}

/** 李雷 → 李*: the customer's name as every screen shows it (the task page, the door, the pickup); the server masks
 * the phone of a finished task itself. */
export const maskName = (name) => (name ? [...name][0] + "*".repeat(Math.max(1, [...name].length - 1)) : "");
