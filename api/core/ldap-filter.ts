/**
 * LDAP filter templates and the tokens substituted into them (RFC 4515; docs/configuration.md).
 *
 * Every substituted value is escaped as an RFC 4515 assertion value, so user input can never change the shape of
 * a filter: `*)(uid=*` becomes `\2a\29\28uid=\2a`. smtpgate never builds a DN from input; DNs come only from
 * the directory's own answers.
 */

/** Tokens each kind of template may use. */
export const FILTER_TOKENS = {
  /** The query that finds the user's entry. */
  user: ["u", "a", "d", "t"],
  /** The allowance query, run after the user is authenticated. */
  allowance: ["u", "a", "d", "dn", "t"],
  /** The certificate query, with the fields of the verified leaf (see api/pki/certificate-tokens.ts). */
  certificate: ["cn", "sn", "sn10", "subject", "issuer", "issuer_cn", "email", "upn", "fp_sha256", "spki_sha256", "t"],
} as const;

const TOKEN = /\{([a-z0-9_]+)\}/g;

/** The token names a template uses, in order of first use. */
export function templateTokens(template: string): string[] {
  return [...new Set([...template.matchAll(TOKEN)].map((match) => match[1] as string))];
}

/**
 * RFC 4515 §3: `*`, `(`, `)`, `\` and NUL must be escaped in an assertion value. We also escape every other
 * byte outside printable ASCII (as the hex of its UTF-8 encoding) so that logs and filters stay unambiguous.
 */
export function escapeFilterValue(value: string): string {
  let out = "";
  for (const byte of Buffer.from(value, "utf8")) {
    const safe = byte >= 0x20 && byte < 0x7f && byte !== 0x2a && byte !== 0x28 && byte !== 0x29 && byte !== 0x5c;
    out += safe ? String.fromCharCode(byte) : `\\${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}

export type TokenValues = Readonly<Record<string, string | undefined>>;

export type FilledFilter = { ok: true; filter: string } | { ok: false; missing: string[] };

/**
 * Fills a template. A token whose value is absent (e.g. `{d}` for a user name without a domain) makes the whole
 * query fail closed: the caller must treat `ok: false` as "not authenticated", never as "match anything".
 */
export function fillFilter(template: string, values: TokenValues): FilledFilter {
  const missing = templateTokens(template).filter((token) => values[token] === undefined);
  if (missing.length > 0) return { ok: false, missing };
  return {
    ok: true,
    filter: template.replace(TOKEN, (_, token: string) => escapeFilterValue(values[token] as string)),
  };
}

/** LDAP GeneralizedTime as used by the `{t}` token: `YYYYMMDDHHMMSSZ` in UTC. */
export function generalizedTime(now: Date): string {
  return now.toISOString().replace(/[-:T]/g, "").slice(0, 14) + "Z";
}

/** The general tokens (docs/configuration.md) for an SMTP AUTH user name. */
export function userTokens(username: string, now: Date): Record<string, string | undefined> {
  const at = username.lastIndexOf("@");
  const hasDomain = at > 0 && at < username.length - 1;
  return {
    u: username,
    a: hasDomain ? username : undefined,
    d: hasDomain ? username.slice(at + 1) : undefined,
    t: generalizedTime(now),
  };
}
