/**
 * Verifies a password against a stored LDAP password attribute value (the `password-attribute` method).
 *
 * Supported: `{SSHA}`, `{SHA}`, `{SMD5}`, `{MD5}`, `{SSHA256}`, `{SHA256}`, `{SSHA512}`, `{SHA512}` (the formats
 * of OpenLDAP's slappasswd and its pw-sha2 module: base64 of digest, followed by the salt for the salted ones).
 * Values without a `{SCHEME}` prefix are plaintext and only accepted when the query allows it.
 * Comparisons are constant-time over the digest.
 */
import { createHash, timingSafeEqual } from "node:crypto";

const SCHEMES: Readonly<Record<string, { digest: string; size: number; salted: boolean }>> = {
  SSHA: { digest: "sha1", size: 20, salted: true },
  SHA: { digest: "sha1", size: 20, salted: false },
  SMD5: { digest: "md5", size: 16, salted: true },
  MD5: { digest: "md5", size: 16, salted: false },
  SSHA256: { digest: "sha256", size: 32, salted: true },
  SHA256: { digest: "sha256", size: 32, salted: false },
  SSHA512: { digest: "sha512", size: 64, salted: true },
  SHA512: { digest: "sha512", size: 64, salted: false },
};

export const SUPPORTED_PASSWORD_SCHEMES = Object.keys(SCHEMES);

const PREFIX = /^\{([A-Za-z0-9.-]+)\}/;

export type PasswordCheck = "match" | "mismatch" | "unsupported-scheme";

export function verifyStoredPassword(
  stored: Buffer,
  password: string,
  options: { allowPlaintext: boolean },
): PasswordCheck {
  const text = stored.toString("utf8");
  const prefix = PREFIX.exec(text);
  if (!prefix) {
    if (!options.allowPlaintext) return "unsupported-scheme";
    return constantTimeEqual(stored, Buffer.from(password, "utf8")) ? "match" : "mismatch";
  }
  const scheme = SCHEMES[(prefix[1] as string).toUpperCase()];
  if (!scheme) return "unsupported-scheme";
  const decoded = Buffer.from(text.slice(prefix[0].length).trim(), "base64");
  if (decoded.length < scheme.size || (!scheme.salted && decoded.length !== scheme.size)) return "mismatch";
  const expected = decoded.subarray(0, scheme.size);
  const salt = decoded.subarray(scheme.size);
  const actual = createHash(scheme.digest).update(password, "utf8").update(salt).digest();
  return timingSafeEqual(actual, expected) ? "match" : "mismatch";
}

/** Constant-time for equal lengths; the length of a stored plaintext is not treated as secret. */
function constantTimeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
