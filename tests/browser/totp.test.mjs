// The test's own TOTP generator against the RFC 6238 appendix B vectors (SHA-1, 8 digits), so a
// failing sign-in in the console test cannot be blamed on the generator.

import assert from "node:assert/strict";
import { test } from "node:test";

import { base32Decode, hotp, totp } from "./lib/totp.mjs";

test("RFC 6238 SHA-1 test vectors", () => {
  const key = Buffer.from("12345678901234567890");
  const vectors = [
    [59, "94287082"],
    [1111111109, "07081804"],
    [1111111111, "14050471"],
    [1234567890, "89005924"],
    [2000000000, "69279037"],
  ];
  for (const [time, code] of vectors) {
    assert.equal(hotp(key, Math.floor(time / 30), 8), code, `T=${time}`);
  }
});

test("base32 seeds decode like an authenticator app reads them", () => {
  assert.deepEqual(base32Decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), Buffer.from("12345678901234567890"));
  assert.equal(totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 59), "287082");
});
