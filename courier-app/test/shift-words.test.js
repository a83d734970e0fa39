// The shift's screens in words: the grade's reasons as the server writes them (server/services/grades.py), and every
// key of the shift, checklist and violations screens in both languages.
import "fake-indexeddb/auto";
import { test } from "node:test";
import assert from "node:assert/strict";
import { allWords, setLang } from "../src/ui/i18n.js";
import { reasonText } from "../src/ui/screens/violations.js";
import { rangeText } from "../src/ui/screens/checklist.js";
import "../src/ui/screens/shift.js";

globalThis.localStorage ??= { getItem: () => null, setItem: () => {} };
globalThis.document ??= { documentElement: {} };

test("every word of the shift's screens is in Chinese and English", () => {
  const { zh, en } = allWords();
  const ours = (table) => Object.keys(table).filter((k) => /^(shift|checklist|violations)\./.test(k)).sort();
  assert.ok(ours(zh).length > 100);
  assert.deepEqual(ours(zh), ours(en));
});

test("the grade's reasons in words", () => {
  setLang("zh");
  assert.equal(reasonText({ code: "violations", violation_code: "late_without_notice", severity: "major", count: 2, points: 10 }),
    "迟到且未提前通知客户（较重）2 次：扣 10 分");
  assert.equal(reasonText({ code: "on_time_rate", kept: 8, late: 1, missed: 1, rate_percent: 80, target_percent: 95,
    counted: true, points: 15 }), "准时率 80%（目标 95%，准时 8，迟到 1，未到 1）：扣 15 分");
  assert.match(reasonText({ code: "on_time_rate", kept: 1, late: 0, missed: 0, rate_percent: 100, counted: false, points: 0 }),
    /暂不计分/);
  assert.equal(reasonText({ code: "critical_violation", count: 1, points: 0 }), "严重违规 1 次：等级最高为 B");
  setLang("en");
  assert.equal(reasonText({ code: "low_ratings", ratings: 5, low: 2, points: 4 }), "2 low ratings of 5: −4 points");
  assert.equal(reasonText({ code: "override", grade: "B", reason: "coaching", points: 0 }), "Set by hand to B: coaching");
  assert.equal(reasonText({ code: "something_new", points: 3 }), "something_new: 3");
  assert.equal(rangeText({ min: 0, max: 1, unit: "cm²" }), "Passing range 0–1 cm²");
  assert.equal(rangeText({ min: 0, max: null, unit: "km" }), "km");
  assert.equal(rangeText({ min: 5, max: null, unit: "" }), "Passing range ≥ 5");
  setLang("zh");
});
