/**
 * Client certificate path validation (RFC 5280 §6; docs/certificates.md), against the profile's trust anchors.
 *
 * @peculiar/x509 parses certificates and verifies signatures; every rule below is ours:
 *   - a path from the leaf to a trust anchor, each certificate signed by the next, built from the presented chain
 *     and the profile's configured intermediates;
 *   - every certificate on the path inside its validity window (the anchor included);
 *   - every issuing certificate below the anchor a CA (basicConstraints cA=true) with keyCertSign, and every
 *     CA's pathLenConstraint respected;
 *   - the leaf not a CA, with digitalSignature (if it has a keyUsage) and clientAuth or anyExtendedKeyUsage in its
 *     extendedKeyUsage (no EKU only where the profile allows it);
 *   - no critical extension we do not understand, anywhere below the anchor.
 * Revocation is checked afterwards by the caller (see crl-store.ts), on the path this returns.
 */
import { nameKeys, signedBy } from "./certificate-memo.ts";
import { x509, type X509Certificate } from "./x509.ts";

export type PathFailureReason =
  | "certificate-untrusted"
  | "certificate-expired"
  | "certificate-not-yet-valid"
  | "certificate-usage"
  | "certificate-critical-extension";

export type PathResult =
  { ok: true; path: X509Certificate[] } | { ok: false; reason: PathFailureReason; detail: string };

export interface PathValidationOptions {
  anchors: readonly X509Certificate[];
  /** Configured intermediate CAs, used like certificates the client presented (they prove nothing alone). */
  intermediates?: readonly X509Certificate[];
  now: Date;
  allowNoExtendedKeyUsage: boolean;
}

const OID = {
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  issuerAltName: "2.5.29.18",
  subjectKeyIdentifier: "2.5.29.14",
  authorityKeyIdentifier: "2.5.29.35",
  crlDistributionPoints: "2.5.29.31",
  certificatePolicies: "2.5.29.32",
  authorityInfoAccess: "1.3.6.1.5.5.7.1.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
  anyExtendedKeyUsage: "2.5.29.37.0",
} as const;

/**
 * Extensions whose meaning we enforce or that carry no constraint we could be failing to enforce. Anything else
 * marked critical (name constraints, policy constraints, vendor extensions) fails the path: RFC 5280 §4.2 says
 * a certificate with an unrecognised critical extension must be rejected.
 */
const UNDERSTOOD = new Set<string>([
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectAltName,
  OID.issuerAltName,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
  OID.crlDistributionPoints,
  OID.certificatePolicies,
  OID.authorityInfoAccess,
]);

export async function validatePath(
  chain: readonly X509Certificate[],
  options: PathValidationOptions,
): Promise<PathResult> {
  const leaf = chain[0];
  if (!leaf) return { ok: false, reason: "certificate-untrusted", detail: "no certificate" };

  const built = await buildPath(leaf, [...chain.slice(1), ...(options.intermediates ?? [])], options.anchors);
  if (!built.ok) return built;
  const path = built.path;
  const anchorIndex = path.length - 1;

  for (const [index, certificate] of path.entries()) {
    if (index === anchorIndex) break;
    const unknown = certificate.extensions.find((extension) => extension.critical && !UNDERSTOOD.has(extension.type));
    if (unknown)
      return fail(
        "certificate-critical-extension",
        `${describe(certificate)} has the unsupported critical extension ${unknown.type}`,
      );
  }

  for (const [index, certificate] of path.entries()) {
    if (options.now < certificate.notBefore)
      return fail(
        "certificate-not-yet-valid",
        `${describe(certificate)} is valid only from ${certificate.notBefore.toISOString()}`,
      );
    if (options.now > certificate.notAfter)
      return fail("certificate-expired", `${describe(certificate)} expired ${certificate.notAfter.toISOString()}`);
    if (index === 0) continue;
    // Issuing certificates: `index - 1` intermediate CAs lie between this one and the leaf.
    const constraints = certificate.getExtension(x509.BasicConstraintsExtension);
    const isAnchor = index === anchorIndex;
    if (!isAnchor) {
      if (!constraints?.ca)
        return fail(
          "certificate-untrusted",
          `${describe(certificate)} issued a certificate but is not a CA (basicConstraints cA is not true)`,
        );
      const usage = certificate.getExtension(x509.KeyUsagesExtension);
      if (!usage || (usage.usages & x509.KeyUsageFlags.keyCertSign) === 0)
        return fail("certificate-untrusted", `${describe(certificate)} may not sign certificates (no keyCertSign)`);
    }
    if (constraints?.pathLength !== undefined && index - 1 > constraints.pathLength) {
      return fail(
        "certificate-untrusted",
        `${describe(certificate)} allows ${constraints.pathLength} intermediate CA(s) below it; the path has ${index - 1}`,
      );
    }
  }

  const leafConstraints = leaf.getExtension(x509.BasicConstraintsExtension);
  if (leafConstraints?.ca)
    return fail("certificate-usage", `${describe(leaf)} is a CA certificate, not a client certificate`);
  const leafUsage = leaf.getExtension(x509.KeyUsagesExtension);
  if (leafUsage && (leafUsage.usages & x509.KeyUsageFlags.digitalSignature) === 0)
    return fail("certificate-usage", `${describe(leaf)} keyUsage lacks digitalSignature`);
  const eku = leaf.getExtension(x509.ExtendedKeyUsageExtension);
  if (!eku) {
    if (!options.allowNoExtendedKeyUsage)
      return fail(
        "certificate-usage",
        `${describe(leaf)} has no extendedKeyUsage (clientAuth required by this profile)`,
      );
  } else {
    const usages = eku.usages.map(String);
    if (!usages.includes(OID.clientAuth) && !usages.includes(OID.anyExtendedKeyUsage))
      return fail("certificate-usage", `${describe(leaf)} extendedKeyUsage does not allow client authentication`);
  }
  return { ok: true, path };
}

type Built = { ok: true; path: X509Certificate[] } | { ok: false; reason: "certificate-untrusted"; detail: string };

/** Walks from the leaf to an anchor, taking issuers from the anchors first, then from the presented chain. */
async function buildPath(
  leaf: X509Certificate,
  presented: readonly X509Certificate[],
  anchors: readonly X509Certificate[],
): Promise<Built> {
  const path = [leaf];
  let current = leaf;
  // Each step consumes one presented certificate, so the presented chain bounds the loop.
  for (let step = 0; step <= presented.length; step += 1) {
    const issuerName = nameKeys(current).issuer;
    for (const anchor of anchors) {
      if (nameKeys(anchor).subject === issuerName && (await signedBy(current, anchor)))
        return { ok: true, path: [...path, anchor] };
    }
    let next: X509Certificate | undefined;
    for (const candidate of presented) {
      if (path.includes(candidate) || nameKeys(candidate).subject !== issuerName) continue;
      if (await signedBy(current, candidate)) {
        next = candidate;
        break;
      }
    }
    if (!next) {
      const selfSigned = nameKeys(current).subject === issuerName;
      return {
        ok: false,
        reason: "certificate-untrusted",
        detail:
          selfSigned && current === leaf
            ? `${describe(leaf)} is self-signed and not a trust anchor`
            : `no trusted issuer found for ${describe(current)} (issuer ${current.issuer})`,
      };
    }
    path.push(next);
    current = next;
  }
  return { ok: false, reason: "certificate-untrusted", detail: "no path to a trust anchor" };
}

function describe(certificate: X509Certificate): string {
  return `certificate "${certificate.subject}" (serial ${certificate.serialNumber})`;
}

function fail(reason: PathFailureReason, detail: string): PathResult {
  return { ok: false, reason, detail };
}
