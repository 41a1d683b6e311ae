/**
 * A login an MTA has already authenticated (Postfix's `sasl_username`): does the directory know it, does the
 * allowance query let it send, and which envelope senders does it own? No password is involved; this is the
 * per-RCPT view of what flow B decides at AUTH (smtp-auth.ts), through the same query's user ID attribute,
 * address attributes and allowance query.
 *
 *   1. refuse a malformed name without LDAP traffic (as flow B does);
 *   2. search `(<userIdAttribute>=<identity>)` under the query's base: exactly one entry, else deny;
 *   3. the allowance query, whose failure the listener turns into a reject or a temporary allowance.
 */
import { SMTP_REPLIES } from "../../contract/smtp-replies.ts";
import { grantAfterAllowance } from "./allowance.ts";
import type { Directory } from "./directory.ts";
import { addressesOf, identityOf } from "./directory-entry.ts";
import { fillFilter } from "./ldap-filter.ts";
import { malformedUsername, type SmtpAuthQuery } from "./smtp-auth.ts";
import { deny, tempfail, type Decision } from "./verdict.ts";

export interface IdentityContext {
  profile: string;
  query: Pick<SmtpAuthQuery, "baseDn" | "userIdAttribute" | "addressAttributes" | "allowance">;
  onAllowanceFailure: "reject" | "allow-temporarily";
  directory: Directory;
  now: Date;
}

/** A refused login at RCPT is no authentication failure (that was at AUTH): the client may not send, 554 5.7.1. */
const REFUSED = SMTP_REPLIES.accessDenied;

export async function decideIdentity(identity: string, context: IdentityContext): Promise<Decision> {
  const { profile, query, directory } = context;
  const outcome = { profile, method: null, smtp: REFUSED };
  const malformed = malformedUsername(identity);
  if (malformed) return deny("malformed-username", { ...outcome, detail: malformed });

  const filter = fillFilter(`(${query.userIdAttribute}={u})`, { u: identity });
  if (!filter.ok) return deny("malformed-username", outcome);
  const asked = { baseDn: query.baseDn, filter: filter.filter };
  const found = await directory.search({
    ...asked,
    attributes: [query.userIdAttribute, ...query.addressAttributes],
    sizeLimit: 2,
  });
  if (!found.ok) return tempfail({ profile, method: null, detail: found.error.detail });
  const [entry, second] = found.value;
  if (!entry) return deny("no-such-user", { ...outcome, query: asked });
  if (second)
    return deny("ambiguous-user", { ...outcome, detail: "more than one entry has this identity", query: asked });
  const canonical = identityOf(entry, query.userIdAttribute);
  if (!canonical.ok)
    return deny(canonical.problem === "missing" ? "no-such-user" : "ambiguous-user", {
      ...outcome,
      dn: entry.dn,
      detail: canonical.detail,
      query: asked,
    });

  return await grantAfterAllowance(
    directory,
    query.allowance,
    {
      profile,
      method: null,
      identity: canonical.identity,
      dn: entry.dn,
      addresses: addressesOf(entry, query.addressAttributes),
    },
    { onAllowanceFailure: context.onAllowanceFailure, now: context.now, refusal: REFUSED },
  );
}
