/**
 * The allowance query (docs/flows.md): after the identity is established, by password or by certificate, a filter that
 * must find at least one entry, e.g. `(&(uid={u})(memberOf=cn=smtp-users,ou=groups,dc=example,dc=com))`. One
 * function for both ways in, so one group gate means the same thing for a password and a certificate.
 *
 * Tokens: `{u}` the identity (the user ID attribute's value), `{a}`/`{d}` from it when it has a domain, `{dn}` the
 * entry's DN, `{t}` now. What the listener does when nothing is found (reject, allow temporarily) is the caller's.
 */
import type { SmtpReply } from "../../contract/smtp-replies.ts";
import type { Directory } from "./directory.ts";
import { fillFilter, userTokens } from "./ldap-filter.ts";
import { allow, deny, tempfail, type Decision } from "./verdict.ts";

export interface AllowanceQuery {
  filter: string;
  baseDn: string;
}

/** Where a query looked: logged with a deny so an operator sees what was asked (never a password). */
export interface AskedQuery {
  baseDn: string;
  filter: string;
}

export type AllowanceResult =
  | { kind: "met" }
  | { kind: "not-met"; asked: AskedQuery }
  /** A token has no value: the query cannot be asked, which fails closed whatever the listener allows. */
  | { kind: "not-askable"; detail: string }
  | { kind: "unavailable"; detail: string };

export async function askAllowance(
  directory: Directory,
  allowance: AllowanceQuery,
  subject: { identity: string; dn: string },
  now: Date,
): Promise<AllowanceResult> {
  const filled = fillFilter(allowance.filter, userTokens(subject.identity, now, { dn: subject.dn }));
  if (!filled.ok)
    return {
      kind: "not-askable",
      detail: `allowance token ${filled.missing.map((t) => `{${t}}`).join(", ")} has no value`,
    };
  const found = await directory.search({
    baseDn: allowance.baseDn,
    filter: filled.filter,
    attributes: [],
    sizeLimit: 1,
  });
  if (!found.ok) return { kind: "unavailable", detail: found.error.detail };
  return found.value.length > 0
    ? { kind: "met" }
    : { kind: "not-met", asked: { baseDn: allowance.baseDn, filter: filled.filter } };
}

/** The detail of an allow the listener grants although the allowance query found nothing. */
export const ALLOWED_TEMPORARILY = "allowance query found no entry; listener allows temporarily";

/** An identity the directory has established, before the allowance query has its say. */
export type Granted = Parameters<typeof allow>[0] & { dn: string };

/**
 * The allowance query's verdict on an established identity: allow (also without an allowance query), allow
 * temporarily or deny as the listener says when it finds nothing, deny when it cannot be asked (fail closed),
 * tempfail when the directory cannot answer. `refusal` overrides the deny's reply.
 */
export async function grantAfterAllowance(
  directory: Directory,
  allowance: AllowanceQuery | undefined,
  granted: Granted,
  options: { onAllowanceFailure: "reject" | "allow-temporarily"; now: Date; refusal?: SmtpReply },
): Promise<Decision> {
  if (!allowance) return allow(granted);
  return verdictOfAllowance(await askAllowance(directory, allowance, granted, options.now), granted, options);
}

/** The verdict on an established identity once the allowance query has answered (see grantAfterAllowance). */
export function verdictOfAllowance(
  found: AllowanceResult,
  granted: Granted,
  options: { onAllowanceFailure: "reject" | "allow-temporarily"; refusal?: SmtpReply },
): Decision {
  const { profile, method, dn } = granted;
  const refused = { profile, method, dn, ...(options.refusal ? { smtp: options.refusal } : {}) };
  switch (found.kind) {
    case "met":
      return allow(granted);
    case "unavailable":
      return tempfail({ profile, method, detail: found.detail });
    case "not-askable":
      // The allowance query cannot even be asked: fail closed, whatever the listener allows on a "no match".
      return deny("allowance-failed", { ...refused, detail: found.detail });
    case "not-met":
      if (options.onAllowanceFailure === "allow-temporarily")
        return allow({ ...granted, temporary: true, detail: ALLOWED_TEMPORARILY });
      return deny("allowance-failed", { ...refused, query: found.asked });
  }
}
