/**
 * The two decisions for an MTA that verified or authenticated the client itself (the Postfix policy server): a
 * certificate known by the facts the MTA passes on, and a login it already accepted. Each runs the same core
 * steps as the full decisions (certificate query, identity, allowance) through the listener's profiles.
 */
import { SMTP_REPLIES } from "../../contract/smtp-replies.ts";
import { tlsVerdict, type CertificateProfile } from "../core/certificate-auth.ts";
import { evaluateCertificateFacts } from "../core/certificate-facts.ts";
import { decideIdentity } from "../core/identity.ts";
import { deny, proceed, type Decision } from "../core/verdict.ts";
import type { LdapProfile } from "./profiles.ts";
import type { CertificateFactsRequest, IdentityRequest } from "./requests.ts";

interface Context {
  onAllowanceFailure: "reject" | "allow-temporarily";
  now: Date;
}

export async function decideByCertificateFacts(
  request: CertificateFactsRequest,
  profileName: string,
  context: Context & { certificate: CertificateProfile | undefined },
): Promise<Decision> {
  const profile = context.certificate;
  const base = { profile: profileName, method: "certificate" as const };
  if (!profile)
    return proceed("certificate-not-used", {
      ...base,
      method: null,
      detail: "the listener's auth profile does not use certificates",
    });
  const outcome = await evaluateCertificateFacts(request.certificate, profile, context.now);
  // Whatever the profile's fallback: an unchecked revocation must not read as "try a password instead".
  if (outcome.kind === "invalid")
    return deny("certificate-revocation-unknown", {
      ...base,
      smtp: SMTP_REPLIES.certificateRequired,
      close: true,
      detail: outcome.detail,
    });
  return tlsVerdict(outcome, profile, context.onAllowanceFailure);
}

export async function decideByIdentity(
  request: IdentityRequest,
  profileName: string,
  context: Context & { ldap: LdapProfile | undefined },
): Promise<Decision> {
  const ldap = context.ldap;
  if (!ldap)
    return deny("auth-not-offered", {
      profile: profileName,
      method: null,
      smtp: SMTP_REPLIES.accessDenied,
      detail: "the listener's certificate profile has no allowAuthFallback: it accepts no logins",
    });
  return await decideIdentity(request.identity, {
    profile: ldap.name,
    query: ldap.query,
    onAllowanceFailure: context.onAllowanceFailure,
    directory: ldap.directory,
    now: context.now,
  });
}
