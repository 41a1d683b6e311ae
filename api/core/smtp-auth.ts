/**
 * Flow B (docs/flows.md): an SMTP AUTH user name and password, decided against an LDAP SMTP AUTH query.
 *
 *   1. refuse before any LDAP traffic: an empty password (RFC 4513 §5.1.2: an "unauthenticated bind" with a DN
 *      and no password succeeds on many servers), a malformed user name, a foreign authorization identity;
 *   2. find the user's entry with the service identity: exactly one, else deny; the identity is its user ID
 *      attribute's value (`ALICE`, ` alice` and `alice@example.com` under `(|(uid={u})(mail={u}))` are alice);
 *   3. check the password: a simple bind as that entry's DN (method `bind`) or a comparison with the entry's
 *      password attribute (method `password-attribute`);
 *   4. the allowance query, whose failure the listener turns into a reject or a temporary allowance.
 *
 * With a DN template (`bindDnTemplate`, Dovecot's `auth_bind_userdn`), steps 2 and 3 go out together: the bind
 * as the DN the template makes of the user name, and a read of that entry (its identity and addresses) with the
 * service identity; the allowance query follows the read, beside the bind. One round trip instead of two in a
 * row; the outcome is decided in the same order as with the search.
 *
 * Any directory failure on the way is `tempfail` (454), never an accept.
 */
import {
  askAllowance,
  grantAfterAllowance,
  verdictOfAllowance,
  type AllowanceQuery,
  type AskedQuery,
} from "./allowance.ts";
import type { Directory, DirectoryEntry } from "./directory.ts";
import { addressesOf, attributeValues, identityOf } from "./directory-entry.ts";
import { fillDn, fillFilter, userTokens } from "./ldap-filter.ts";
import { ldapResultText } from "./ldap-results.ts";
import { verifyStoredPassword } from "./password-schemes.ts";
import type { Method } from "../../contract/verdict.ts";
import { allow, deny, tempfail, type Decision } from "./verdict.ts";

/** Longest user name smtpgate sends to a directory; longer ones are refused without LDAP traffic. */
export const MAX_USERNAME_LENGTH = 256;
/** Passwords longer than this are refused without LDAP traffic (no directory stores such a password). */
export const MAX_PASSWORD_LENGTH = 1024;

// C0 controls and DEL: a user name that carries them is an attack or an encoding error, never a real user.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

export interface SmtpAuthQuery {
  baseDn: string;
  filter: string;
  /** Method bind: bind as this DN (tokens RFC 4514-escaped) without a search first; `filter` is then unused. */
  bindDnTemplate?: string;
  /** Its value is the identity of an allow, whatever the client typed. */
  userIdAttribute: string;
  /** Attributes of the envelope senders the identity owns; [] = not configured (addresses: null). */
  addressAttributes: readonly string[];
  method: "bind" | "password-attribute";
  passwordAttribute: string;
  allowPlaintextPasswords: boolean;
  allowance?: AllowanceQuery;
}

export interface SmtpAuthContext {
  profile: string;
  query: SmtpAuthQuery;
  onAllowanceFailure: "reject" | "allow-temporarily";
  directory: Directory;
  now: Date;
}

export interface SmtpAuthCredentials {
  username: string;
  password: string;
  authzid?: string | undefined;
}

export async function decideSmtpAuth(credentials: SmtpAuthCredentials, context: SmtpAuthContext): Promise<Decision> {
  const { username, password } = credentials;
  const { profile, query, directory } = context;
  const method = methodOf(query);
  const outcome = { profile, method };

  const refused = refuseWithoutDirectory(credentials, profile, query);
  if (refused) return refused;
  if (query.bindDnTemplate !== undefined && query.method === "bind")
    return await decideByDirectBind(credentials, context, query.bindDnTemplate);

  const userFilter = fillFilter(query.filter, userTokens(username, context.now));
  if (!userFilter.ok)
    return deny("no-such-user", {
      ...outcome,
      detail: `token ${userFilter.missing.map((t) => `{${t}}`).join(", ")} has no value`,
    });

  // One search brings the entry, its identity, its addresses and (method password-attribute) its password.
  const wantsAttribute = query.method === "password-attribute";
  const asked = { baseDn: query.baseDn, filter: userFilter.filter };
  const found = await directory.search({
    ...asked,
    attributes: [
      query.userIdAttribute,
      ...query.addressAttributes,
      ...(wantsAttribute ? [query.passwordAttribute] : []),
    ],
    binaryAttributes: wantsAttribute ? [query.passwordAttribute] : [],
    sizeLimit: 2,
  });
  if (!found.ok) return tempfail({ ...outcome, detail: found.error.detail });
  const [entry, second] = found.value;
  if (!entry) return deny("no-such-user", { ...outcome, query: asked });
  if (second)
    return deny("ambiguous-user", {
      ...outcome,
      detail: "more than one entry matches the SMTP AUTH query",
      query: asked,
    });
  // Checked before the password: an entry that cannot name its identity is refused whatever the password.
  const identity = identityOf(entry, query.userIdAttribute);
  if (!identity.ok) return refusedIdentity(identity, entry, outcome, asked);
  // Before the password too: acting as someone else is refused whatever the password, and costs no bind.
  if (!authzidPermitted(credentials, identity.identity))
    return deny("authzid-not-permitted", { ...outcome, dn: entry.dn, query: asked });

  const checked = wantsAttribute
    ? checkPasswordAttribute(entry, password, query)
    : await checkBind(entry.dn, password, directory);
  if (checked !== "ok") return refusedPassword(checked, entry, outcome, asked);

  const granted = grantedOf(outcome, identity.identity, entry, query);
  return await grantAfterAllowance(directory, query.allowance, granted, {
    onAllowanceFailure: context.onAllowanceFailure,
    now: context.now,
  });
}

/** The filter of a read of the entry itself: the DN is the whole query. */
const THE_ENTRY_ITSELF = "(objectClass=*)";

/** Flow B with a DN template: the bind and the read of the entry at once, then the same checks in the same order. */
async function decideByDirectBind(
  credentials: SmtpAuthCredentials,
  context: SmtpAuthContext,
  template: string,
): Promise<Decision> {
  const { profile, query, directory, now } = context;
  const outcome = { profile, method: methodOf(query) };
  const userDn = fillDn(template, userTokens(credentials.username, now));
  if (!userDn.ok)
    return deny("no-such-user", {
      ...outcome,
      detail: `token ${userDn.missing.map((t) => `{${t}}`).join(", ")} has no value`,
    });

  const asked = { baseDn: userDn.dn, filter: THE_ENTRY_ITSELF };
  const reading = directory.search({
    ...asked,
    scope: "base",
    missingBaseIsEmpty: true,
    attributes: [query.userIdAttribute, ...query.addressAttributes],
    sizeLimit: 1,
  });
  // The allowance query needs the identity, so it follows the read; its answer counts only if the bind succeeds.
  const { allowance } = query;
  const allowing = allowance
    ? reading.then(async function askAllowanceOfEntry(found) {
        const entry = found.ok ? found.value[0] : undefined;
        const identity = entry && identityOf(entry, query.userIdAttribute);
        return entry && identity?.ok
          ? await askAllowance(directory, allowance, { identity: identity.identity, dn: entry.dn }, now)
          : null;
      })
    : null;
  const [found, checked, allowed] = await Promise.all([
    reading,
    checkBind(userDn.dn, credentials.password, directory),
    allowing,
  ]);

  if (!found.ok) return tempfail({ ...outcome, detail: found.error.detail });
  const [entry] = found.value;
  if (!entry) return deny("no-such-user", { ...outcome, query: asked });
  const identity = identityOf(entry, query.userIdAttribute);
  if (!identity.ok) return refusedIdentity(identity, entry, outcome, asked);
  if (checked !== "ok") return refusedPassword(checked, entry, outcome, asked);
  // After the password here: the bind has run beside the read, and a wrong password must count as one.
  if (!authzidPermitted(credentials, identity.identity))
    return deny("authzid-not-permitted", { ...outcome, dn: entry.dn, query: asked });

  const granted = grantedOf(outcome, identity.identity, entry, query);
  if (allowed === null) return allow(granted); // no allowance query
  return verdictOfAllowance(allowed, granted, { onAllowanceFailure: context.onAllowanceFailure });
}

type Outcome = { profile: string; method: Method };

/** What an allow names: the identity, its entry and the addresses it owns. */
function grantedOf(outcome: Outcome, identity: string, entry: DirectoryEntry, query: SmtpAuthQuery) {
  return { ...outcome, identity, dn: entry.dn, addresses: addressesOf(entry, query.addressAttributes) };
}

function refusedIdentity(
  identity: Extract<ReturnType<typeof identityOf>, { ok: false }>,
  entry: DirectoryEntry,
  outcome: Outcome,
  asked: AskedQuery,
): Decision {
  return deny(identity.problem === "missing" ? "no-such-user" : "ambiguous-user", {
    ...outcome,
    dn: entry.dn,
    detail: identity.detail,
    query: asked,
  });
}

function refusedPassword(
  checked: Exclude<Check, "ok">,
  entry: DirectoryEntry,
  outcome: Outcome,
  asked: AskedQuery,
): Decision {
  if (checked.kind === "tempfail") return tempfail({ ...outcome, detail: checked.detail });
  return deny(checked.reason, { ...outcome, dn: entry.dn, detail: checked.detail, query: asked });
}

/**
 * Step 1 alone: the refusals that need no directory (and so are worth no cache entry), or null when the
 * directory must be asked.
 */
export function refuseWithoutDirectory(
  credentials: SmtpAuthCredentials,
  profile: string,
  query: Pick<SmtpAuthQuery, "method">,
): Decision | null {
  const { username, password, authzid } = credentials;
  const outcome = { profile, method: methodOf(query) };
  if (password.length === 0) return deny("empty-password", outcome);
  if (password.length > MAX_PASSWORD_LENGTH)
    return deny("invalid-credentials", { ...outcome, detail: "password longer than the limit" });
  const malformed = malformedUsername(username);
  if (malformed) return deny("malformed-username", { ...outcome, detail: malformed });
  // Whether an authorization identity is the user's own needs the entry (authzidPermitted); a malformed one does not.
  if (authzid !== undefined && authzid !== "" && malformedUsername(authzid))
    return deny("authzid-not-permitted", { ...outcome, detail: "authorization identity malformed" });
  return null;
}

/**
 * RFC 4616: an authorization identity other than the user's own asks to act as someone else, which no profile
 * permits. The user's own is the name as typed or the entry's identity, so `ALICE` may say `alice`.
 */
function authzidPermitted(credentials: SmtpAuthCredentials, identity: string): boolean {
  const { authzid } = credentials;
  return authzid === undefined || authzid === "" || authzid === credentials.username || authzid === identity;
}

/** Why a user name is never sent to a directory, or null when it may be. */
export function malformedUsername(username: string): string | null {
  return username.length === 0 || username.length > MAX_USERNAME_LENGTH || CONTROL.test(username)
    ? `user name empty, over ${MAX_USERNAME_LENGTH} characters or with control characters`
    : null;
}

function methodOf(query: Pick<SmtpAuthQuery, "method">): Method {
  return query.method === "bind" ? "ldap-bind" : "ldap-password";
}

type Check =
  | "ok"
  | { kind: "deny"; reason: "invalid-credentials" | "unsupported-password-scheme"; detail?: string }
  | { kind: "tempfail"; detail: string };

async function checkBind(dn: string, password: string, directory: Directory): Promise<Check> {
  const bound = await directory.bindAsUser(dn, password);
  if (!bound.ok) return { kind: "tempfail", detail: bound.error.detail };
  if (bound.value.bound) return "ok";
  return {
    kind: "deny",
    reason: "invalid-credentials",
    detail: `bind refused: ${ldapResultText(bound.value.resultCode, bound.value.message)}`,
  };
}

function checkPasswordAttribute(entry: DirectoryEntry, password: string, query: SmtpAuthQuery): Check {
  const values = attributeValues(entry, query.passwordAttribute);
  if (values.length === 0)
    return { kind: "deny", reason: "invalid-credentials", detail: `entry has no readable ${query.passwordAttribute}` };
  let unsupported = 0;
  for (const value of values) {
    const result = verifyStoredPassword(Buffer.isBuffer(value) ? value : Buffer.from(value, "utf8"), password, {
      allowPlaintext: query.allowPlaintextPasswords,
    });
    if (result === "match") return "ok";
    if (result === "unsupported-scheme") unsupported += 1;
  }
  if (unsupported === values.length) {
    return {
      kind: "deny",
      reason: "unsupported-password-scheme",
      detail: `no ${query.passwordAttribute} value in a supported scheme`,
    };
  }
  return { kind: "deny", reason: "invalid-credentials" };
}
