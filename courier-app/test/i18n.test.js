// Every word registered by the screens exists in both languages, every t("key") the sources use is registered,
// and every code of docs/protocol.md's tables has words (src/ui/codes.js). Imports every module under src/ui, so
// it also proves they import without a DOM.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import "fake-indexeddb/auto";

const here = dirname(fileURLToPath(import.meta.url));
const ui = join(here, "..", "src", "ui");

function jsFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? jsFiles(path) : name.endsWith(".js") ? [path] : [];
  });
}

const files = jsFiles(ui);
for (const file of files) await import(pathToFileURL(file).href);
const { allWords } = await import(pathToFileURL(join(ui, "i18n.js")).href);
const { KNOWN_CODES } = await import(pathToFileURL(join(ui, "codes.js")).href);

test("every registered key has both a Chinese and an English word", () => {
  const { zh, en } = allWords();
  const onlyZh = Object.keys(zh).filter((key) => !(key in en));
  const onlyEn = Object.keys(en).filter((key) => !(key in zh));
  assert.deepEqual(onlyZh, [], "keys without English");
  assert.deepEqual(onlyEn, [], "keys without Chinese");
  const empty = [...Object.entries(zh), ...Object.entries(en)].filter(([, text]) => typeof text !== "string" || !text.trim());
  assert.deepEqual(empty, [], "empty words");
  assert.ok(Object.keys(zh).length > 100, "the screens registered their words");
});

test("the same placeholders in both languages", () => {
  const { zh, en } = allWords();
  const names = (text) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join(",");
  const differ = Object.keys(zh).filter((key) => key in en && names(zh[key]) !== names(en[key]));
  assert.deepEqual(differ, []);
});

test("every literal t(\"key\") in the sources is registered", () => {
  const { zh } = allWords();
  const missing = [];
  for (const file of files) {
    for (const match of readFileSync(file, "utf8").matchAll(/\bt\("([\w.]+)"/g)) {
      if (!(match[1] in zh)) missing.push(`${file.slice(ui.length + 1)}: ${match[1]}`);
    }
  }
  assert.deepEqual(missing, []);
});

test("every code of docs/protocol.md's error, conflict, rejection, handover and stop tables has words", () => {
  const doc = readFileSync(join(here, "..", "..", "docs", "protocol.md"), "utf8");
  const codes = new Set();
  for (const m of doc.matchAll(/^\| \d{3} \| `(\w+)` \|/gm)) codes.add(m[1]);
  const tables = doc.slice(doc.indexOf("Rules (each a `rejected` code)"), doc.indexOf("#### The handover state on a task"))
    + doc.slice(doc.indexOf("### Statuses and codes"), doc.indexOf("### Exactly once"));
  const lines = tables.split("\n");
  lines.forEach((line, i) => {
    const m = /^\| `(\w+)` \|/.exec(line);
    if (m && !(lines[i + 1] || "").startsWith("|---")) codes.add(m[1]); // not a table's header row
  });
  for (const m of doc.matchAll(/Refusals: [^.]*/g)) for (const c of m[0].matchAll(/`(\w+)`/g)) codes.add(c[1]);
  assert.ok(codes.size > 50, `read the tables (${codes.size} codes)`);
  const missing = [...codes].filter((code) => !KNOWN_CODES.includes(code));
  assert.deepEqual(missing, []);
});
