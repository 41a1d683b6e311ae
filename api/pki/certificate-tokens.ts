/**
 * The certificate tokens (docs/certificates.md#certificate-tokens), read from the verified leaf:
 *
 *   {cn}          the subject's most specific CN (first in RFC 4514 order: "CN=alice,CN=Users,DC=corp" → alice)
 *   {sn}          serial number, upper-case hex, no colons, no leading zeros (0x00FF01 → "FF01")
 *   {sn10}        serial number in decimal (OpenLDAP's certificateExactMatch wants decimal)
 *   {subject}     subject as an RFC 4514 string, most specific RDN first: "CN=alice,O=Example,C=US"
 *   {issuer}      issuer, likewise
 *   {issuer_cn}   the issuer's most specific CN (what an MTA that verified the certificate passes on, e.g.
 *                 Postfix's ccert_issuer)
 *   {email}       first SAN rfc822Name, else the subject's emailAddress
 *   {upn}         SAN otherName userPrincipalName (1.3.6.1.4.1.311.20.2.3)
 *   {fp_sha256}   SHA-256 of the certificate's DER, lower-case hex
 *   {spki_sha256} SHA-256 of the SubjectPublicKeyInfo DER, lower-case hex
 *
 * A field the certificate does not have is absent (undefined), so a query that uses it fails closed.
 */
import { createHash } from "node:crypto";
import { x509, type X509Certificate } from "./x509.ts";

export const CERTIFICATE_TOKENS = [
  "cn",
  "sn",
  "sn10",
  "subject",
  "issuer",
  "issuer_cn",
  "email",
  "upn",
  "fp_sha256",
  "spki_sha256",
] as const;
export type CertificateTokens = Record<(typeof CERTIFICATE_TOKENS)[number], string | undefined>;

const EMAIL_ADDRESS = "1.2.840.113549.1.9.1";

export function certificateTokens(leaf: X509Certificate, der: Uint8Array): CertificateTokens {
  const serial = leaf.serialNumber.replace(/^0+/, "").toUpperCase() || "0";
  const names = subjectAltNames(leaf);
  return {
    // getField lists values in encoding order, most specific last.
    cn: leaf.subjectName.getField("CN").at(-1),
    sn: serial,
    sn10: BigInt(`0x${serial}`).toString(10),
    subject: rfc4514(leaf.subjectName),
    issuer: rfc4514(leaf.issuerName),
    issuer_cn: leaf.issuerName.getField("CN").at(-1),
    email:
      names.find((name) => name.type === "email")?.value ??
      leaf.subjectName.getField(EMAIL_ADDRESS)[0] ??
      leaf.subjectName.getField("E")[0],
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

/** RFC 4514 §2.3 short names by OID; other attribute types are written as their dotted OID. */
const SHORT_NAMES: ReadonlyMap<string, string> = new Map([
  ["2.5.4.3", "CN"],
  ["2.5.4.7", "L"],
  ["2.5.4.8", "ST"],
  ["2.5.4.10", "O"],
  ["2.5.4.11", "OU"],
  ["2.5.4.6", "C"],
  ["2.5.4.9", "STREET"],
  ["0.9.2342.19200300.100.1.25", "DC"],
  ["0.9.2342.19200300.100.1.1", "UID"],
]);

/** The names @peculiar/x509 uses for attribute types it knows (its toJSON keys), by OID. */
const LIBRARY_NAMES: Readonly<Record<string, string>> = {
  CN: "2.5.4.3",
  L: "2.5.4.7",
  ST: "2.5.4.8",
  O: "2.5.4.10",
  OU: "2.5.4.11",
  C: "2.5.4.6",
  DC: "0.9.2342.19200300.100.1.25",
  E: EMAIL_ADDRESS,
  G: "2.5.4.42",
  I: "2.5.4.43",
  SN: "2.5.4.4",
  T: "2.5.4.12",
};

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
        .flatMap(([type, values]) => {
          const oid = LIBRARY_NAMES[type] ?? type;
          return values.map((value) => `${SHORT_NAMES.get(oid) ?? oid}=${escapeDnValue(value)}`);
        })
        .join("+"),
    )
    .reverse()
    .join(",");
}

/**
 * RFC 4514 §2.4: escape `"+,;<>\` and NUL anywhere, `#` and space at the start, space at the end. Character by
 * character, so a lone space (first and last at once) is escaped once.
 */
export function escapeDnValue(value: string): string {
  let out = "";
  for (let i = 0; i < value.length; i += 1) {
    const char = value[i] as string;
    if (char === "\u0000") out += "\\00";
    else if (
      DN_SPECIALS.has(char) ||
      (i === 0 && (char === "#" || char === " ")) ||
      (char === " " && i === value.length - 1)
    )
      out += `\\${char}`;
    else out += char;
  }
  return out;
}

const DN_SPECIALS = new Set(['"', "+", ",", ";", "<", ">", "\\"]);
