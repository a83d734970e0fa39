// The handover PIN checked offline: PBKDF2-HMAC-SHA256(pin, salt as UTF-8 text, iterations), hex.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { pinMatches } from "../src/core/pin.js";

// Vectors made once with the server's own formula (server/services/handover.py pin_digest):
//   python3 -c "import hashlib; print(hashlib.pbkdf2_hmac('sha256', b'123456',
//     b'9f86d081884c7d659a2feaa0c55ad015', 10000).hex())"
//   … and likewise for ('000000', 'salt', 1) and ('654321', '盐-salt'.encode(), 2)
const VECTORS = [
  { pin: "123456", salt: "9f86d081884c7d659a2feaa0c55ad015", iterations: 10000,
    hash: "151457180c8599a0a588b27d6de21f3ab0d06c1967968b727d872bc29b9197e2" },
  { pin: "000000", salt: "salt", iterations: 1,
    hash: "26b75e6922656604c6977cae4aaa498d91e8db885a71372d3053d8aca3957d17" },
  { pin: "654321", salt: "盐-salt", iterations: 2, // a salt outside ASCII: UTF-8 bytes of the text
    hash: "e2d560a88314199a3cd88fe7b6f35c6f6ddf2bac1461c141605cc9598e22819f" },
];
const state = ({ salt, iterations, hash }) => ({ algorithm: "pbkdf2_sha256", salt, iterations, hash });

test("the right PIN matches the hash Python's hashlib.pbkdf2_hmac made", async () => {
  for (const v of VECTORS) assert.equal(await pinMatches(v.pin, state(v)), true, v.pin);
});

test("a wrong PIN does not match (one digit off, swapped, another vector's PIN)", async () => {
  const v = VECTORS[0];
  for (const wrong of ["123457", "023456", "214365", "654321", "000000"]) {
    assert.equal(await pinMatches(wrong, state(v)), false, wrong);
  }
});

test("the salt is text (its UTF-8 bytes), not hex-decoded; iterations count", async () => {
  const v = VECTORS[0];
  assert.equal(await pinMatches(v.pin, { ...state(v), iterations: 9999 }), false);
  assert.equal(await pinMatches(v.pin, { ...state(v), salt: v.salt.toUpperCase() }), false);
  assert.equal(await pinMatches(v.pin, { ...state(v), hash: v.hash.toUpperCase() }), true);
});

test("not six digits never matches; an unknown algorithm or no PIN state throws", async () => {
  const v = VECTORS[0];
  for (const bad of ["12345", "1234567", " 123456", "12345a", "１２３４５６", "", null, undefined, 123456]) {
    assert.equal(await pinMatches(bad, state(v)), false, String(bad));
  }
  await assert.rejects(pinMatches("123456", { ...state(v), algorithm: "argon2id" }), TypeError);
  await assert.rejects(pinMatches("123456", null), TypeError);
});

test("a hash of another length never matches", async () => {
  const v = VECTORS[0];
  assert.equal(await pinMatches(v.pin, { ...state(v), hash: v.hash.slice(0, 32) }), false);
  assert.equal(await pinMatches(v.pin, { ...state(v), hash: `${v.hash}00` }), false);
});

test("agrees with Python on fresh random salts and PINs (when python3 is here)", async (t) => {
  let out;
  try {
    out = execFileSync("python3", ["-c", [
      "import hashlib, json, secrets",
      "rows = []",
      "for _ in range(5):",
      "    pin = f'{secrets.randbelow(10**6):06d}'; salt = secrets.token_hex(16); it = 1000 + secrets.randbelow(50)",
      "    rows.append({'pin': pin, 'salt': salt, 'iterations': it,",
      "                 'hash': hashlib.pbkdf2_hmac('sha256', pin.encode(), salt.encode(), it).hex()})",
      "print(json.dumps(rows))"].join("\n")]).toString();
  } catch {
    t.skip("python3 not available");
    return;
  }
  for (const v of JSON.parse(out)) {
    assert.equal(await pinMatches(v.pin, state(v)), true);
    const other = String((Number(v.pin) + 1) % 1e6).padStart(6, "0");
    assert.equal(await pinMatches(other, state(v)), false);
  }
});
