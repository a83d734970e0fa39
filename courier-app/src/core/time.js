// Times as the protocol wants them (RFC 3339 with the device's own UTC offset) and as couriers read them
// (in depot time, whatever zone the phone is set to).

/** The depot's time zone before the first pull says it (the server's FIELDOPS_TIMEZONE default). */
export const DEPOT_TIME_ZONE = "Asia/Shanghai";

let depotZone = DEPOT_TIME_ZONE;

/** The depot's time zone: the server's (every pull page names it: `timezone`), Asia/Shanghai until one has. */
export function depotTimeZone() {
  return depotZone;
}

/**
 * Take the server's zone (an IANA name); null or a name this device's Intl does not know keeps the one in use.
 * @param {string|null|undefined} name
 * @returns {boolean} whether it was taken
 */
export function setDepotTimeZone(name) {
  if (!name) return false;
  try {
    new Intl.DateTimeFormat("en-GB", { timeZone: name });
  } catch {
    return false;
  }
  depotZone = name;
  return true;
}

const pad = (n, width = 2) => String(Math.trunc(Math.abs(n))).padStart(width, "0");

/**
 * The device clock as RFC 3339 with its local UTC offset, e.g. 2026-12-07T09:14:03+08:00.
 * The offset is the device's own (not "Z"): the server keeps it in the op log beside the effective time.
 * @param {Date} [date]
 * @returns {string}
 */
export function deviceTime(date = new Date()) {
  const offsetMin = -date.getTimezoneOffset();
  const sign = offsetMin >= 0 ? "+" : "-";
  return `${pad(date.getFullYear(), 4)}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `${sign}${pad(offsetMin / 60)}:${pad(offsetMin % 60)}`;
}

/**
 * Parse an RFC 3339 time (with offset) to a Date; null for null/empty/unparsable.
 * @param {string|null|undefined} text
 * @returns {Date|null}
 */
export function parseTime(text) {
  if (!text) return null;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? null : date;
}

/**
 * A time of day in depot time ("09:14"), for lists and windows.
 * @param {string|Date|null} value
 * @param {string} [timeZone]
 */
export function formatClock(value, timeZone = depotTimeZone()) {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) return "";
  return new Intl.DateTimeFormat("en-GB", { timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
    .format(date);
}

/**
 * A date and time in depot time ("2026-12-07 09:14").
 * @param {string|Date|null} value
 * @param {string} [timeZone]
 */
export function formatDateTime(value, timeZone = depotTimeZone()) {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) return "";
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", {
    timeZone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).formatToParts(date).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
}

/**
 * A window {start, end} in depot time ("09:00–11:00").
 * @param {{start: string, end: string}|null} window
 */
export function formatWindow(window, timeZone = depotTimeZone()) {
  if (!window) return "";
  return `${formatClock(window.start, timeZone)}–${formatClock(window.end, timeZone)}`;
}
