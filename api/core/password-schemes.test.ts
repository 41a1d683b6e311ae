import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { verifyStoredPassword } from "./password-schemes.ts";

const salt = Buffer.from("s4lt!");
function salted(scheme: string, digest: string, password: string): Buffer {
  const hash = createHash(digest).update(password).update(salt).digest();
  return Buffer.from(`{${scheme}}${Buffer.concat([hash, salt]).toString("base64")}`);
}
function unsalted(scheme: string, digest: string, password: string): Buffer {
  return Buffer.from(`{${scheme}}${createHash(digest).update(password).digest("base64")}`);
}

const strict = { allowPlaintext: false };

describe("verifyStoredPassword", () => {
  it.each([
    ["SSHA", "sha1", salted],
    ["SMD5", "md5", salted],
    ["SSHA256", "sha256", salted],
    ["SSHA512", "sha512", salted],
    ["SHA", "sha1", unsalted],
    ["MD5", "md5", unsalted],
    ["SHA256", "sha256", unsalted],
    ["SHA512", "sha512", unsalted],
  ])("{%s}: the right password matches, a wrong one does not", (scheme, digest, make) => {
    const stored = make(scheme, digest, "secret");
    expect(verifyStoredPassword(stored, "secret", strict)).toBe("match");
    expect(verifyStoredPassword(stored, "Secret", strict)).toBe("mismatch");
    expect(verifyStoredPassword(stored, "", strict)).toBe("mismatch");
  });

  it("treats the scheme name case-insensitively", () => {
    expect(
      verifyStoredPassword(
        Buffer.from(salted("SSHA", "sha1", "pw").toString().replace("{SSHA}", "{ssha}")),
        "pw",
        strict,
      ),
    ).toBe("match");
  });

  it("refuses plaintext unless allowed", () => {
    expect(verifyStoredPassword(Buffer.from("secret"), "secret", strict)).toBe("unsupported-scheme");
    expect(verifyStoredPassword(Buffer.from("secret"), "secret", { allowPlaintext: true })).toBe("match");
    expect(verifyStoredPassword(Buffer.from("secret"), "secret2", { allowPlaintext: true })).toBe("mismatch");
  });

  it("reports schemes it cannot check", () => {
    expect(verifyStoredPassword(Buffer.from("{CRYPT}$6$abc$def"), "x", strict)).toBe("unsupported-scheme");
  });

  it("rejects truncated or garbage hashes without throwing", () => {
    expect(verifyStoredPassword(Buffer.from("{SSHA}AAAA"), "x", strict)).toBe("mismatch");
    expect(verifyStoredPassword(Buffer.from("{SHA}not base64 at all!!"), "x", strict)).toBe("mismatch");
  });
});
