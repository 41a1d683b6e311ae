// Issuing with @peculiar/x509 and WebCrypto (ECDSA P-256, SHA-256): key pairs, certificates with SKI/AKI, CA
// extensions, CRLs, and the PEM, key and serial forms the tests compare with.
import "reflect-metadata"; // must come before @peculiar/x509
import * as x509 from "@peculiar/x509";
import type { webcrypto } from "node:crypto";
import type { CrlFile, IssuedCertificate } from "./contents.ts";

// No DOM lib in this project: the WebCrypto types come from node:crypto.
type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(globalThis.crypto);

export const DAY = 86_400_000;
export const HOUR = 3_600_000;

const EC_KEY: webcrypto.EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const SIGNING: webcrypto.EcdsaParams = { name: "ECDSA", hash: "SHA-256" };

export interface Issuer {
  certificate: x509.X509Certificate;
  keys: CryptoKeyPair;
}

export const randomBytes = (n: number): Uint8Array => globalThis.crypto.getRandomValues(new Uint8Array(n));

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex").toUpperCase();
}

/** Random 8..16 byte positive serial whose first byte is 0x10..0x7f. */
function randomSerial(): Uint8Array {
  const length = 8 + ((randomBytes(1)[0] ?? 0) % 9);
  const serial = randomBytes(length);
  serial[0] = 0x10 + ((serial[0] ?? 0) % 0x70);
  return serial;
}

/** RFC 4514 string → JSON name in DER order (reversed), e.g. "CN=a,O=b" → [{O:["b"]},{CN:["a"]}]. */
function nameOf(rfc4514: string): x509.JsonName {
  return rfc4514
    .split(",")
    .map((rdn) => {
      const eq = rdn.indexOf("=");
      const type = rdn.slice(0, eq).trim();
      const value = rdn.slice(eq + 1).trim();
      const key = /^emailAddress$/i.test(type) ? "E" : type;
      return { [key]: [value] };
    })
    .reverse();
}

export function pemOf(der: ArrayBuffer | Uint8Array, tag: string): string {
  return x509.PemConverter.encode(der instanceof Uint8Array ? der : new Uint8Array(der), tag) + "\n";
}

export async function newKeys(): Promise<CryptoKeyPair> {
  return (await globalThis.crypto.subtle.generateKey(EC_KEY, true, ["sign", "verify"])) as CryptoKeyPair;
}

export async function issued(
  name: string,
  certificate: x509.X509Certificate,
  keys: CryptoKeyPair,
): Promise<IssuedCertificate> {
  const der = new Uint8Array(certificate.rawData);
  const pkcs8 = await globalThis.crypto.subtle.exportKey("pkcs8", keys.privateKey);
  // @peculiar/x509 drops the DER pad byte (00 before a byte >= 0x80) and prints lower-case hex.
  const serialHex = certificate.serialNumber.toUpperCase().replace(/^(00)+(?=[0-9A-F])/, "");
  return {
    name,
    certificate,
    der,
    pem: pemOf(der, "CERTIFICATE"),
    keyPem: pemOf(pkcs8, "PRIVATE KEY"),
    serialHex,
    serialDecimal: BigInt(`0x${serialHex}`).toString(10),
  };
}

interface CertSpec {
  subject: string;
  /** undefined: self-signed. */
  issuer?: Issuer;
  keys?: CryptoKeyPair;
  serial?: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  extensions: x509.Extension[];
}

export async function makeCert(spec: CertSpec): Promise<{ certificate: x509.X509Certificate; keys: CryptoKeyPair }> {
  const keys = spec.keys ?? (await newKeys());
  const signer = spec.issuer?.keys ?? keys;
  const extensions = [...spec.extensions];
  // SKI always; AKI only when issued by another key (self-signed certificates need none)
  extensions.push(await x509.SubjectKeyIdentifierExtension.create(keys.publicKey));
  if (spec.issuer) extensions.push(await x509.AuthorityKeyIdentifierExtension.create(signer.publicKey));
  const subject = nameOf(spec.subject);
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: toHex(spec.serial ?? randomSerial()),
    subject,
    issuer: spec.issuer ? spec.issuer.certificate.subjectName : subject,
    notBefore: spec.notBefore,
    notAfter: spec.notAfter,
    publicKey: keys.publicKey,
    signingKey: signer.privateKey,
    signingAlgorithm: SIGNING,
    extensions,
  });
  return { certificate, keys };
}

export const KU = x509.KeyUsageFlags;

export function caExtensions(pathLength?: number): x509.Extension[] {
  return [
    new x509.BasicConstraintsExtension(true, pathLength, true),
    new x509.KeyUsagesExtension(KU.keyCertSign | KU.cRLSign, true),
  ];
}

/** DER of the CRL Number extension value (INTEGER n, n < 128). */
function crlNumber(n: number): x509.Extension {
  return new x509.Extension("2.5.29.20", false, new Uint8Array([0x02, 0x01, n]));
}

export async function makeCrl(
  issuer: Issuer,
  signingKey: CryptoKey,
  thisUpdate: Date,
  nextUpdate: Date,
  revoked: IssuedCertificate[],
  number: number,
): Promise<CrlFile> {
  const crl = await x509.X509CrlGenerator.create({
    issuer: issuer.certificate.subjectName,
    thisUpdate,
    nextUpdate,
    signingKey,
    signingAlgorithm: SIGNING,
    extensions: [await x509.AuthorityKeyIdentifierExtension.create(issuer.keys.publicKey), crlNumber(number)],
    entries: revoked.map((c) => ({ serialNumber: c.serialHex, revocationDate: new Date(thisUpdate.getTime() - HOUR) })),
  });
  const der = new Uint8Array(crl.rawData);
  return {
    der,
    pem: pemOf(der, "X509 CRL"),
    // read back: the encoded times have whole seconds
    thisUpdate: crl.thisUpdate,
    nextUpdate: crl.nextUpdate ?? nextUpdate,
  };
}
