/**
 * Memos for the expensive, immutable facts about certificates: parsing (asn1js takes ~0.5 ms per certificate),
 * the DER of names, and whether one certificate's signature verifies with another's key (~0.5 ms through
 * WebCrypto). Clients present the same certificates again and again and every chain shares its intermediates,
 * so a repeated decision skips nearly all of it. Only facts that can never change are kept: a signature that
 * verified once always verifies; validity windows, usages and revocation are still checked per decision.
 */
import { x509, type X509Certificate } from "./x509.ts";

/** Parsed certificates by their base64 DER (bounded; oldest first out). */
const MAX_PARSED = 1024;
const parsed = new Map<string, X509Certificate>();

/** Parses base64 DER, reusing the object for a certificate seen before. Throws for what is not a certificate. */
export function parseCertificateCached(base64: string, der: () => Uint8Array): X509Certificate {
  const known = parsed.get(base64);
  if (known) return known;
  const certificate = new x509.X509Certificate(der());
  if (parsed.size >= MAX_PARSED) parsed.delete(parsed.keys().next().value as string);
  parsed.set(base64, certificate);
  return certificate;
}

const names = new WeakMap<X509Certificate, { subject: string; issuer: string }>();

/** The DER of a certificate's subject and issuer names, as hex (RFC 5280 name chaining compares these). */
export function nameKeys(certificate: X509Certificate): { subject: string; issuer: string } {
  let keys = names.get(certificate);
  if (!keys) {
    keys = { subject: nameKey(certificate.subjectName), issuer: nameKey(certificate.issuerName) };
    names.set(certificate, keys);
  }
  return keys;
}

export function nameKey(name: x509.Name): string {
  return Buffer.from(name.toArrayBuffer()).toString("hex");
}

const verified = new WeakMap<X509Certificate, WeakMap<X509Certificate, boolean>>();

/** Whether `certificate` carries a signature made with `issuer`'s key (never throws). */
export async function signedBy(certificate: X509Certificate, issuer: X509Certificate): Promise<boolean> {
  let byIssuer = verified.get(certificate);
  const known = byIssuer?.get(issuer);
  if (known !== undefined) return known;
  let ok: boolean;
  try {
    ok = await certificate.verify({ publicKey: issuer.publicKey, signatureOnly: true });
  } catch {
    // An unsupported algorithm or a malformed key is "not signed by", never a crash.
    ok = false;
  }
  if (!byIssuer) {
    byIssuer = new WeakMap();
    verified.set(certificate, byIssuer);
  }
  byIssuer.set(issuer, ok);
  return ok;
}
