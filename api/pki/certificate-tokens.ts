/**
 * The certificate tokens of SPEC §4, read from the verified leaf:
 *
 *   {cn}          first CN of the subject
 *   {sn}          serial number, upper-case hex, no colons, no leading zeros (0x00FF01 → "FF01")
 *   {sn10}        serial number in decimal (OpenLDAP's certificateExactMatch wants decimal)
 *   {subject}     subject as an RFC 4514 string, most specific RDN first: "CN=alice,O=Example,C=US"
 *   {issuer}      issuer, likewise
 *   {email}       first SAN rfc822Name, else the subject's emailAddress
 *   {upn}         SAN otherName userPrincipalName (1.3.6.1.4.1.311.20.2.3)
 *   {fp_sha256}   SHA-256 of the certificate's DER, lower-case hex
 *   {spki_sha256} SHA-256 of the SubjectPublicKeyInfo DER, lower-case hex
 *
 * A field the certificate does not have is absent (undefined), so a query that uses it fails closed.
 */
import { createHash } from "node:crypto";
import { x509, type X509Certificate } from "./x509.ts";

export const CERTIFICATE_TOKENS = ["cn", "sn", "sn10", "subject", "issuer", "email", "upn", "fp_sha256", "spki_sha256"] as const;
export type CertificateTokens = Record<(typeof CERTIFICATE_TOKENS)[number], string | undefined>;

const EMAIL_ADDRESS = "1.2.840.113549.1.9.1";

export function certificateTokens(leaf: X509Certificate, der: Uint8Array): CertificateTokens {
  const serial = leaf.serialNumber.replace(/^0+/, "").toUpperCase() || "0";
  const names = subjectAltNames(leaf);
  return {
    cn: leaf.subjectName.getField("CN")[0],
    sn: serial,
    sn10: BigInt(`0x${serial}`).toString(10),
    subject: rfc4514(leaf.subjectName),
    issuer: rfc4514(leaf.issuerName),
    email: names.find((name) => name.type === "email")?.value ?? leaf.subjectName.getField(EMAIL_ADDRESS)[0] ?? leaf.subjectName.getField("E")[0],
    upn: names.find((name) => name.type === "upn")?.value,
    fp_sha256: createHash("sha256").update(der).digest("hex"),
    spki_sha256: createHash("sha256").update(new Uint8Array(leaf.publicKey.rawData)).digest("hex"),
  };
}

/** SAN entries; an otherName the library cannot decode (anything but UPN and GUID) yields no names, not a throw. */
function subjectAltNames(certificate: X509Certificate): { type: string; value: string }[] {
  try {
    const extension = certificate.getExtension(x509.SubjectAlternativeNameExtension);
    return extension ? extension.names.items.map((name) => ({ type: name.type, value: name.value })) : [];
  } catch {
    return [];
  }
}

/** RFC 4514 §2.3 short names; other attribute types are written as their dotted OID. */
const SHORT_NAMES = new Set(["CN", "L", "ST", "O", "OU", "C", "STREET", "DC", "UID"]);

/**
 * A distinguished name as an RFC 4514 string: RDNs in reverse order of their encoding, "+" inside a
 * multi-valued RDN, special characters escaped. Values of types without a short name are written as escaped
 * strings (not as #-prefixed BER), which is what directories store for such values in practice.
 */
export function rfc4514(name: x509.Name): string {
  return name
    .toJSON()
    .map((rdn) =>
      Object.entries(rdn)
        .flatMap(([type, values]) => values.map((value) => `${SHORT_NAMES.has(type.toUpperCase()) ? type.toUpperCase() : oidOf(type)}=${escapeDnValue(value)}`))
        .join("+"),
    )
    .reverse()
    .join(",");
}

function oidOf(type: string): string {
  if (/^\d+(\.\d+)+$/.test(type)) return type;
  if (type === "E") return EMAIL_ADDRESS;
  return type;
}

/** RFC 4514 §2.4: escape `"+,;<>\` and NUL anywhere, `#` and space at the start, space at the end. */
export function escapeDnValue(value: string): string {
  let out = value.replace(/["+,;<>\\]/g, (char) => `\\${char}`).replaceAll("\u0000", "\\00");
  if (out.startsWith("#") || out.startsWith(" ")) out = `\\${out}`;
  if (out.endsWith(" ") && out.length > 1) out = `${out.slice(0, -1)}\\ `;
  return out;
}
