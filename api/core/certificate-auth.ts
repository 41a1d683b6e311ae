/**
 * Flows A and C (docs/flows.md): a client certificate chain, judged by a certificate auth profile.
 *
 *   1. no chain → `certificate-missing`;
 *   2. parse (with size caps), validate the path (api/pki/path-validation.ts), check revocation;
 *   3. substitute the leaf's tokens into the certificate query (RFC 4515-escaped) and search: exactly one entry
 *      → authenticated, the identity is the entry's user ID attribute; none or several → not authenticated;
 *   4. the allowance query, if the certificate query has one: the same group gate as for passwords.
 *
 * What "not authenticated" means is the profile's: with `allowAuthFallback` the session continues and SMTP AUTH
 * is offered (flow C) — for an invalid certificate only with `onInvalidCertificate: fallback`; without it the
 * relay answers 554 5.7.1 and closes (flow A).
 */
import { parseChain, type ChainLimits } from "../pki/certificate-chain.ts";
import { certificateTokens } from "../pki/certificate-tokens.ts";
import type { RevocationStatus } from "../pki/crl-store.ts";
import { validatePath, type PathResult } from "../pki/path-validation.ts";
import type { X509Certificate } from "../pki/x509.ts";
import { ALLOWED_TEMPORARILY, askAllowance, type AllowanceQuery, type AskedQuery } from "./allowance.ts";
import type { Directory } from "./directory.ts";
import { addressesOf, attributeValues, identityOf } from "./directory-entry.ts";
import { fillFilter, withTimeToken, type TokenValues } from "./ldap-filter.ts";
import { SMTP_REPLIES } from "../../contract/smtp-replies.ts";
import type { Reason } from "../../contract/verdict.ts";
import { allow, deny, proceed, tempfail, type Decision } from "./verdict.ts";

export interface CertificateQuery {
  baseDn: string;
  filter: string;
  userIdAttribute: string;
  /** Attributes of the envelope senders the identity owns; [] = not configured (addresses: null). */
  addressAttributes: readonly string[];
  matchUserCertificate: boolean;
  /** The same group gate as SMTP AUTH's; what a failure means is the listener's (onAllowanceFailure). */
  allowance?: AllowanceQuery | undefined;
}

export interface RevocationPolicy {
  whenUnknown: "deny" | "tempfail" | "allow";
  /** Status of `certificate` issued by `issuer` (both from the validated path). */
  check(certificate: X509Certificate, issuer: X509Certificate): Promise<RevocationStatus>;
}

export interface CertificateProfile {
  name: string;
  anchors: readonly X509Certificate[];
  /** Not trusted by themselves: only used to link a leaf to an anchor. */
  intermediates: readonly X509Certificate[];
  limits: ChainLimits;
  allowNoExtendedKeyUsage: boolean;
  revocation: RevocationPolicy | null;
  query: CertificateQuery;
  directory: Directory;
  /** The ldap profile SMTP AUTH falls back to, if any. */
  allowAuthFallback: string | undefined;
  onInvalidCertificate: "reject" | "fallback";
  /** Told what each certificate check found, for a caller that shows the steps (smtpgate test-cert). */
  observer?: CertificateObserver | undefined;
}

export interface CertificateObserver {
  /** The path built from the presented chain (and the profile's intermediates) to an anchor, or why none is valid. */
  path(result: PathResult): void;
  /** The revocation status of `certificate` (the leaf, then each intermediate CA) issued by `issuer`. */
  revocation(certificate: X509Certificate, issuer: X509Certificate, status: RevocationStatus): void;
}

/**
 * How a certificate came out, before the profile turns it into a verdict.
 *
 * `reusableUntil` (ms since the epoch, possibly Infinity) says how long the outcome stays true for the same chain,
 * profile and CRLs: until a certificate on the path expires or the CRL that vouched for it is due. It is absent
 * where the outcome must not be reused because it hangs on something that may change any moment: no certificate,
 * a directory or revocation source that could not answer, a revocation status that was unknown.
 */
export type CertificateOutcome =
  | {
      kind: "authenticated";
      identity: string;
      dn: string;
      addresses: string[] | null;
      /**
       * The allowance query's answer, whatever the listener makes of it: a cached outcome serves every listener
       * of the profile, and each applies its own onAllowanceFailure (see `allowanceStanding`). `passed` also when
       * the query has no allowance.
       */
      allowance: "passed" | "failed" | "unaskable";
      detail?: string;
      query?: AskedQuery;
      reusableUntil?: number;
    }
  | { kind: "missing" }
  | { kind: "invalid"; reason: Reason; detail: string; reusableUntil?: number }
  | {
      kind: "unmapped";
      reason: "certificate-unmapped" | "certificate-ambiguous";
      detail?: string;
      query?: AskedQuery;
      reusableUntil?: number;
    }
  | { kind: "unavailable"; reason: "directory-unavailable" | "certificate-revocation-unknown"; detail: string };

/** An outcome that holds whatever the clock says (a malformed or untrusted chain stays so; TTLs still bound it). */
const FOREVER = Number.POSITIVE_INFINITY;

export async function evaluateCertificate(
  chain: readonly string[] | null,
  profile: CertificateProfile,
  now: Date,
): Promise<CertificateOutcome> {
  if (!chain || chain.length === 0) return { kind: "missing" };
  const parsed = parseChain(chain, profile.limits);
  if (!parsed.ok)
    return { kind: "invalid", reason: "certificate-malformed", detail: parsed.detail, reusableUntil: FOREVER };

  const path = await validatePath(
    parsed.chain.map((item) => item.certificate),
    {
      anchors: profile.anchors,
      intermediates: profile.intermediates,
      now,
      allowNoExtendedKeyUsage: profile.allowNoExtendedKeyUsage,
    },
  );
  profile.observer?.path(path);
  // A chain that fails validation fails again for the same anchors (an expired one stays expired); the TTL bounds
  // the one case that changes with time, a certificate not yet valid.
  if (!path.ok) return { kind: "invalid", reason: path.reason, detail: path.detail, reusableUntil: FOREVER };
  let reusableUntil: number | undefined = Math.min(...path.path.map((certificate) => certificate.notAfter.getTime()));

  const leaf = parsed.chain[0] as (typeof parsed.chain)[number];
  let revocationNote: string | undefined;
  if (profile.revocation) {
    const status = await profile.revocation.check(leaf.certificate, path.path[1] as X509Certificate);
    profile.observer?.revocation(leaf.certificate, path.path[1] as X509Certificate, status);
    if (status.status === "revoked")
      return { kind: "invalid", reason: "certificate-revoked", detail: status.detail, reusableUntil: FOREVER };
    if (status.status === "unknown") {
      if (profile.revocation.whenUnknown === "deny")
        return { kind: "invalid", reason: "certificate-revocation-unknown", detail: status.detail };
      if (profile.revocation.whenUnknown === "tempfail")
        return { kind: "unavailable", reason: "certificate-revocation-unknown", detail: status.detail };
      revocationNote = `revocation unknown, allowed by profile: ${status.detail}`;
      reusableUntil = undefined;
    } else {
      reusableUntil = Math.min(reusableUntil, status.usableUntil.getTime());
    }
    // A revoked CA revokes what it signed: each intermediate on the path is checked against a CRL from its own
    // issuer where one of the profile's sources holds one. Unlike the leaf's, a missing CRL here is not "unknown"
    // (most deployments publish none for their CAs), so only a positive revocation counts.
    for (let index = 1; index < path.path.length - 1; index += 1) {
      const intermediate = await profile.revocation.check(
        path.path[index] as X509Certificate,
        path.path[index + 1] as X509Certificate,
      );
      profile.observer?.revocation(
        path.path[index] as X509Certificate,
        path.path[index + 1] as X509Certificate,
        intermediate,
      );
      if (intermediate.status === "revoked")
        return {
          kind: "invalid",
          reason: "certificate-revoked",
          detail: `intermediate CA ${(path.path[index] as X509Certificate).subject}: ${intermediate.detail}`,
          reusableUntil: FOREVER,
        };
    }
  }
  const reuse = reusableUntil === undefined ? {} : { reusableUntil };
  const tokens = withTimeToken(certificateTokens(leaf.certificate, leaf.der), now);
  return await mapCertificate(tokens, profile, now, {
    der: leaf.der,
    reuse,
    ...(revocationNote ? { note: revocationNote } : {}),
  });
}

/** What step 3 knows of the certificate besides its tokens. */
export interface PresentedFacts {
  /** The leaf's DER, for matchUserCertificate; absent when an MTA passed only facts about it. */
  der?: Uint8Array;
  /** How long the outcome may be reused (see CertificateOutcome). */
  reuse: { reusableUntil?: number };
  /** Added to the detail of an authenticated outcome (an allowed unknown revocation status). */
  note?: string;
}

/**
 * Steps 3 and 4: the certificate's tokens through the certificate query, then the allowance query. Shared by a
 * chain smtpgate validated and a certificate an MTA verified (certificate-facts.ts).
 */
export async function mapCertificate(
  tokens: TokenValues,
  profile: Pick<CertificateProfile, "query" | "directory">,
  now: Date,
  presented: PresentedFacts,
): Promise<CertificateOutcome> {
  const { reuse } = presented;
  const filter = fillFilter(profile.query.filter, tokens);
  if (!filter.ok)
    return {
      kind: "unmapped",
      reason: "certificate-unmapped",
      detail: `the certificate has no ${filter.missing.map((t) => `{${t}}`).join(", ")}`,
      ...reuse,
    };

  const { query } = profile;
  const matchBinary = query.matchUserCertificate;
  const asked = { baseDn: query.baseDn, filter: filter.filter };
  const found = await profile.directory.search({
    ...asked,
    attributes: [query.userIdAttribute, ...query.addressAttributes, ...(matchBinary ? [USER_CERTIFICATE] : [])],
    binaryAttributes: matchBinary ? [USER_CERTIFICATE] : [],
    sizeLimit: 2,
  });
  if (!found.ok) return { kind: "unavailable", reason: "directory-unavailable", detail: found.error.detail };
  const [entry, second] = found.value;
  const unmapped = (reason: "certificate-unmapped" | "certificate-ambiguous", detail: string): CertificateOutcome => ({
    kind: "unmapped",
    reason,
    detail,
    query: asked,
    ...reuse,
  });
  if (!entry) return unmapped("certificate-unmapped", `no entry matches ${filter.filter}`);
  if (second) return unmapped("certificate-ambiguous", `more than one entry matches ${filter.filter}`);

  if (matchBinary) {
    const der = presented.der;
    if (der === undefined)
      return unmapped("certificate-unmapped", `${entry.dn}: matchUserCertificate needs the certificate itself`);
    const stored = attributeValues(entry, USER_CERTIFICATE);
    if (!stored.some((value) => Buffer.isBuffer(value) && Buffer.compare(value, Buffer.from(der)) === 0))
      return unmapped("certificate-unmapped", `${entry.dn}: no userCertificate equals the presented certificate`);
  }
  const identity = identityOf(entry, query.userIdAttribute);
  if (!identity.ok)
    return unmapped(identity.problem === "missing" ? "certificate-unmapped" : "certificate-ambiguous", identity.detail);

  const authenticated = {
    kind: "authenticated" as const,
    identity: identity.identity,
    dn: entry.dn,
    addresses: addressesOf(entry, query.addressAttributes),
    ...reuse,
  };
  const note = presented.note ? { detail: presented.note } : {};
  if (!query.allowance) return { ...authenticated, allowance: "passed", ...note };
  const allowance = await askAllowance(profile.directory, query.allowance, authenticated, now);
  switch (allowance.kind) {
    case "met":
      return { ...authenticated, allowance: "passed", ...note };
    case "unavailable":
      return { kind: "unavailable", reason: "directory-unavailable", detail: allowance.detail };
    case "not-askable":
      return { ...authenticated, allowance: "unaskable", detail: allowance.detail };
    case "not-met":
      return { ...authenticated, allowance: "failed", query: allowance.asked, ...note };
  }
}

/**
 * What the listener makes of an authenticated certificate's allowance: `allowed`, `temporary` (the listener
 * allows temporarily), or `refused` (reject, or a query that could not be asked, which fails closed). A refused
 * certificate is treated like an invalid one: 554 5.7.1 and close, unless the profile falls back to SMTP AUTH on
 * invalid certificates.
 */
export function allowanceStanding(
  outcome: Extract<CertificateOutcome, { kind: "authenticated" }>,
  onAllowanceFailure: "reject" | "allow-temporarily",
): "allowed" | "temporary" | "refused" {
  if (outcome.allowance === "passed") return "allowed";
  return outcome.allowance === "failed" && onAllowanceFailure === "allow-temporarily" ? "temporary" : "refused";
}

const USER_CERTIFICATE = "userCertificate;binary";

/** The verdict at STARTTLS time (`/v1/decide/tls`); the listener says what an allowance failure means. */
export function tlsVerdict(
  outcome: CertificateOutcome,
  profile: CertificateProfile,
  onAllowanceFailure: "reject" | "allow-temporarily",
): Decision {
  const base = { profile: profile.name, method: "certificate" as const };
  const fallback = profile.allowAuthFallback !== undefined;
  // Without a fallback the certificate is the only way in: a failure ends the session (docs/flows.md, flow A).
  const refuse = { ...base, smtp: SMTP_REPLIES.certificateRequired, close: true };
  switch (outcome.kind) {
    case "authenticated": {
      const standing = allowanceStanding(outcome, onAllowanceFailure);
      const granted = { ...base, identity: outcome.identity, dn: outcome.dn, addresses: outcome.addresses };
      if (standing === "allowed") return allow({ ...granted, detail: outcome.detail });
      if (standing === "temporary") return allow({ ...granted, temporary: true, detail: ALLOWED_TEMPORARILY });
      const refused = { dn: outcome.dn, detail: outcome.detail, query: outcome.query };
      return fallback && profile.onInvalidCertificate === "fallback"
        ? proceed("allowance-failed", { ...base, ...refused })
        : deny("allowance-failed", { ...refuse, ...refused });
    }
    case "missing":
      return fallback ? proceed("certificate-missing", base) : deny("certificate-missing", refuse);
    case "unmapped":
      return fallback
        ? proceed(outcome.reason, { ...base, detail: outcome.detail })
        : deny(outcome.reason, { ...refuse, detail: outcome.detail, query: outcome.query });
    case "invalid":
      return fallback && profile.onInvalidCertificate === "fallback"
        ? proceed(outcome.reason, { ...base, detail: outcome.detail })
        : deny(outcome.reason as Exclude<Reason, "ok" | "directory-unavailable">, {
            ...refuse,
            detail: outcome.detail,
          });
    case "unavailable":
      return tempfail({ ...base, reason: outcome.reason, detail: outcome.detail, close: !fallback });
  }
}
