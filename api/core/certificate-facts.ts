/**
 * A client certificate an MTA has verified itself (Postfix's `ccert_*` policy attributes), judged by a certificate
 * auth profile: the facts fill the certificate query's tokens and the rest is the chain's steps 3 and 4
 * (certificate-auth.ts `mapCertificate`): the search, the identity, the allowance query.
 *
 *   {fp_sha256} ← sha256   {spki_sha256} ← spkiSha256   {cn} ← subjectCn   {issuer_cn} ← issuerCn   {t} ← now
 *
 * Every other token ({sn}, {email}, {subject}, ...) has no value, so a query that uses one fails closed. The MTA
 * validated the path against its own trust anchors and passes neither the certificate nor its serial: no
 * revocation check can be made here, so a profile that asks for one refuses this way in (and the configuration
 * says so for a front that would use it: api/config/schema.ts).
 */
import type { CertificateFactsRequestBody } from "../../contract/requests.ts";
import { mapCertificate, type CertificateOutcome, type CertificateProfile } from "./certificate-auth.ts";
import { withTimeToken } from "./ldap-filter.ts";

export type CertificateFacts = CertificateFactsRequestBody["certificate"];

/** Why a profile with revocation checks refuses a certificate known only by facts (log and config errors). */
export const NO_REVOCATION_ON_FACTS =
  "the MTA passes neither the certificate nor its serial number, so its revocation cannot be checked: this profile's revocation setting refuses certificates an MTA verified";

export async function evaluateCertificateFacts(
  facts: CertificateFacts,
  profile: CertificateProfile,
  now: Date,
): Promise<CertificateOutcome> {
  if (profile.revocation)
    return { kind: "invalid", reason: "certificate-revocation-unknown", detail: NO_REVOCATION_ON_FACTS };
  const tokens = {
    fp_sha256: facts.sha256,
    spki_sha256: facts.spkiSha256,
    cn: facts.subjectCn,
    issuer_cn: facts.issuerCn,
  };
  if (Object.values(tokens).every((value) => value === undefined)) return { kind: "missing" };
  // Nothing is reusable: the MTA's verification (validity dates included) holds for this session only.
  return await mapCertificate(withTimeToken(tokens, now), profile, now, { reuse: {} });
}
