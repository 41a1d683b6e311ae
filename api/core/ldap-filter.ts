/**
 * LDAP filter templates, DN templates and the tokens substituted into them (RFC 4515, RFC 4514;
 * docs/configuration.md).
 *
 * Every substituted value is escaped for where it goes, so user input can never change the shape of a filter or
 * a DN: in a filter as an RFC 4515 assertion value (`*)(uid=*` becomes `\2a\29\28uid=\2a`), in a DN as an
 * RFC 4514 attribute value (`a,ou=x` becomes `a\,ou=x`; only `bindDnTemplate` builds a DN from input). A
 * template is split into text and tokens once (at config load, when the schema checks it) and kept, so a
 * decision only concatenates.
 */
import { escapeDnValue } from "../pki/certificate-tokens.ts";

/** Tokens each kind of template may use. */
export const FILTER_TOKENS = {
  /** The query that finds the user's entry. */
  user: ["u", "a", "d", "t"],
  /** A DN template for binding the user without a search first (`bindDnTemplate`). */
  bindDn: ["u", "a", "d"],
  /** The allowance query, run after the user is authenticated. */
  allowance: ["u", "a", "d", "dn", "t"],
  /** The certificate query, with the fields of the verified leaf (see api/pki/certificate-tokens.ts). */
  certificate: ["cn", "sn", "sn10", "subject", "issuer", "issuer_cn", "email", "upn", "fp_sha256", "spki_sha256", "t"],
} as const;

// With its capture group, split() puts text at even indexes and token names at odd ones.
const TOKEN = /\{([a-z0-9_]+)\}/;

/** A template split once into text and token names. */
interface CompiledTemplate {
  /** Text and token names alternating: `(uid={u})` → `["(uid=", "u", ")"]`. */
  readonly parts: readonly string[];
  /** Token names in order of first use. */
  readonly tokens: readonly string[];
}

// Templates come from the configuration (and a CLI's one-off query): few, so the bound is only a safety net.
const MAX_COMPILED = 1024;
const compiled = new Map<string, CompiledTemplate>();

function compiledTemplate(template: string): CompiledTemplate {
  let found = compiled.get(template);
  if (found) return found;
  const parts = template.split(TOKEN);
  found = { parts, tokens: [...new Set(parts.filter((_, index) => index % 2 === 1))] };
  if (compiled.size >= MAX_COMPILED) compiled.clear();
  compiled.set(template, found);
  return found;
}

/** The token names a template uses, in order of first use. */
export function templateTokens(template: string): readonly string[] {
  return compiledTemplate(template).tokens;
}

/**
 * RFC 4515 §3: `*`, `(`, `)`, `\` and NUL must be escaped in an assertion value. We also escape every other
 * byte outside printable ASCII (as the hex of its UTF-8 encoding) so that logs and filters stay unambiguous.
 */
export function escapeFilterValue(value: string): string {
  if (NOTHING_TO_ESCAPE.test(value)) return value;
  let out = "";
  for (const byte of Buffer.from(value, "utf8")) {
    const safe = byte >= 0x20 && byte < 0x7f && byte !== 0x2a && byte !== 0x28 && byte !== 0x29 && byte !== 0x5c;
    out += safe ? String.fromCharCode(byte) : `\\${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}

// Printable ASCII without `(`, `)`, `*` and `\`: most user names, returned as they are.
const NOTHING_TO_ESCAPE = /^[\x20-\x27\x2b-\x5b\x5d-\x7e]*$/;

export type TokenValues = Readonly<Record<string, string | undefined>>;

export type FilledFilter = { ok: true; filter: string } | { ok: false; missing: string[] };

/**
 * Fills a template. A token whose value is absent (e.g. `{d}` for a user name without a domain) makes the whole
 * query fail closed: the caller must treat `ok: false` as "not authenticated", never as "match anything".
 */
export function fillFilter(template: string, values: TokenValues): FilledFilter {
  const filled = fill(template, values, escapeFilterValue);
  return typeof filled === "string" ? { ok: true, filter: filled } : filled;
}

export type FilledDn = { ok: true; dn: string } | { ok: false; missing: string[] };

/** Fills a DN template (`uid={u},ou=people,dc=example,dc=com`), each value RFC 4514-escaped; fails closed as fillFilter. */
export function fillDn(template: string, values: TokenValues): FilledDn {
  const filled = fill(template, values, escapeDnValue);
  return typeof filled === "string" ? { ok: true, dn: filled } : filled;
}

function fill(
  template: string,
  values: TokenValues,
  escape: (value: string) => string,
): string | { ok: false; missing: string[] } {
  const { parts, tokens } = compiledTemplate(template);
  let out = parts[0] as string;
  for (let index = 1; index < parts.length; index += 2) {
    const value = values[parts[index] as string];
    if (value === undefined) return { ok: false, missing: tokens.filter((token) => values[token] === undefined) };
    out += escape(value) + (parts[index + 1] as string);
  }
  return out;
}

/** LDAP GeneralizedTime as used by the `{t}` token: `YYYYMMDDHHMMSSZ` in UTC. */
export function generalizedTime(now: Date): string {
  return now.toISOString().replace(/[-:T]/g, "").slice(0, 14) + "Z";
}

/**
 * `tokens` with `{t}` (now as GeneralizedTime) added as a getter: formatted only when a template uses it, which
 * most do not (it showed in decision profiles). A copy: `tokens` is left as it is. Spreading the result formats
 * `{t}`; pass the object itself.
 */
export function withTimeToken<T extends object>(tokens: T, now: Date): T & { readonly t: string } {
  return Object.defineProperty({ ...tokens }, "t", {
    enumerable: true,
    get: () => generalizedTime(now),
  }) as T & { readonly t: string };
}

/** The general tokens (docs/configuration.md) for an SMTP AUTH user name, with `more` (e.g. `{dn}`). */
export function userTokens(username: string, now: Date, more: Record<string, string> = {}): TokenValues {
  const at = username.lastIndexOf("@");
  const hasDomain = at > 0 && at < username.length - 1;
  return withTimeToken(
    {
      ...more,
      u: username,
      a: hasDomain ? username : undefined,
      d: hasDomain ? username.slice(at + 1) : undefined,
    },
    now,
  );
}
