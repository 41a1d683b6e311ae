/**
 * What a decision reads from the entry a query found: the identity (the user ID attribute's value, never the
 * name as typed) and the envelope senders it owns. Both come from the search that found the entry, so neither
 * costs a round trip.
 *
 *   identityOf(entry, "uid")                       → { ok: true, identity: "alice" }
 *   addressesOf(entry, ["mail", "proxyAddresses"]) → ["alice@example.com", "a.smith@example.com"]
 */
import type { DirectoryEntry } from "./directory.ts";

/** Active Directory's attribute of typed addresses: `SMTP:` (primary), `smtp:`, `X500:`, `sip:`, ... */
const PROXY_ADDRESSES = "proxyaddresses";
const SMTP_PREFIX = /^smtp:/i;

/** The values of an attribute; names are case-insensitive (RFC 4512 §2.5). */
export function attributeValues(entry: DirectoryEntry, name: string): readonly (string | Buffer)[] {
  const wanted = name.toLowerCase();
  for (const [key, values] of Object.entries(entry.attributes)) if (key.toLowerCase() === wanted) return values;
  return [];
}

export type IdentityOf = { ok: true; identity: string } | { ok: false; problem: "missing" | "several"; detail: string };

/**
 * The entry's identity: exactly one non-empty value of the user ID attribute. None or several fail closed: the
 * identity names the session everywhere downstream (verdict, Received:, logs, rate limits), and picking one of
 * several values would let the name typed choose it.
 */
export function identityOf(entry: DirectoryEntry, userIdAttribute: string): IdentityOf {
  const values = attributeValues(entry, userIdAttribute)
    .map((value) => value.toString())
    .filter((value) => value !== "");
  if (values.length === 1) return { ok: true, identity: values[0] as string };
  return values.length === 0
    ? { ok: false, problem: "missing", detail: `${entry.dn} has no ${userIdAttribute} (the user ID attribute)` }
    : {
        ok: false,
        problem: "several",
        detail: `${entry.dn} has ${values.length} ${userIdAttribute} values; the user ID attribute must have one`,
      };
}

/**
 * The envelope senders the entry owns, from `attributes` in order: proxyAddresses keeps only its `smtp:` values
 * (prefix removed), the domain is lower-cased (the local part is the owner's: RFC 5321 §2.4), duplicates and
 * values that are no address go. Null when no attribute is configured: "not known", unlike [] ("owns none").
 */
export function addressesOf(entry: DirectoryEntry, attributes: readonly string[]): string[] | null {
  if (attributes.length === 0) return null;
  const addresses = new Set<string>();
  for (const attribute of attributes) {
    const proxy = attribute.toLowerCase() === PROXY_ADDRESSES;
    for (const raw of attributeValues(entry, attribute)) {
      let value = raw.toString().trim();
      if (proxy) {
        if (!SMTP_PREFIX.test(value)) continue;
        value = value.replace(SMTP_PREFIX, "");
      }
      const address = normalizedAddress(value);
      if (address !== null) addresses.add(address);
    }
  }
  return [...addresses];
}

// eslint-disable-next-line no-control-regex -- matching control characters and spaces is the point
const NOT_IN_AN_ADDRESS = /[\u0000-\u0020\u007f<>]/;

function normalizedAddress(value: string): string | null {
  const at = value.lastIndexOf("@");
  if (at <= 0 || at === value.length - 1 || NOT_IN_AN_ADDRESS.test(value)) return null;
  return `${value.slice(0, at)}@${value.slice(at + 1).toLowerCase()}`;
}
