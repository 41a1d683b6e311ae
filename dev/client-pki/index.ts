// A throw-away client-certificate PKI for the certificate-authentication tests, made at run time with
// @peculiar/x509 and WebCrypto (ECDSA P-256, SHA-256): a root CA, an intermediate CA (pathLen 0) that issues the
// client certificates, an unrelated root, a set of leaves with exactly one defect each, a few broken CAs for
// chain defects, and CRLs (current, stale, wrongly signed, and an empty one of the root).
//
// Identities: every defect leaf that the brief does not name otherwise carries alice's identity (subject
// CN=alice,O=Example,C=US, SAN rfc822Name alice@example.com and otherName UPN alice@corp.example.com), so that
// each one WOULD map to alice in the directory (see cert-ldap.ts) and the defect is the only reason to reject it.
//
// Names: subject strings here are RFC 4514 strings (most significant RDN last), so "CN=alice,O=Example,C=US" is
// encoded C=US first, CN=alice last, like a certificate from a real CA. (@peculiar/x509's `subject` getter prints
// DER order: "C=US, O=Example, CN=alice".)
//
// Serials: random 8..16 bytes with the first byte in 0x10..0x7f (no DER pad byte, no leading zero nibble),
// except `serialLeadingZero` (erin), whose serial starts with 0xFF01: DER needs a 0x00 pad byte in front, and
// `serialHex` leaves it out ("FF01…").
import "reflect-metadata"; // must come before @peculiar/x509
import * as x509 from "@peculiar/x509";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { webcrypto } from "node:crypto";

// No DOM lib in this project: the WebCrypto types come from node:crypto.
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(globalThis.crypto);

const DAY = 86_400_000;
const HOUR = 3_600_000;

const EC_KEY: webcrypto.EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const SIGNING: webcrypto.EcdsaParams = { name: "ECDSA", hash: "SHA-256" };

export const OID_UPN = "1.3.6.1.4.1.311.20.2.3";
export const OID_EMAIL_ADDRESS = "1.2.840.113549.1.9.1";
export const OID_ANY_EKU = "2.5.29.37.0";
export const OID_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
export const OID_SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
/** The unknown extension `unknownCritical` carries (critical). */
export const OID_UNKNOWN_CRITICAL = "1.3.6.1.4.1.55555.1";

export const ROOT_SUBJECT = "CN=smtpgate Test Root CA,O=smtpgate tests";
export const INTERMEDIATE_SUBJECT = "CN=smtpgate Test Intermediate CA,O=smtpgate tests";
export const OTHER_ROOT_SUBJECT = "CN=Unrelated Test Root CA,O=someone else";

export const LEAF_NAMES = [
  "alice",
  "bob",
  "carol",
  "expired",
  "notYetValid",
  "otherCa",
  "selfSigned",
  "revoked",
  "noClientAuth",
  "noEku",
  "anyEku",
  "caAsLeaf",
  "noDigitalSignature",
  "unknownCritical",
  "subjectEmailOnly",
  "notCaIntermediateLeaf",
  "noKeyCertSignLeaf",
  "pathLenLeaf",
  "expiredIntermediateLeaf",
  "serialLeadingZero",
] as const;
export type LeafName = (typeof LEAF_NAMES)[number];

export const EXTRA_CA_NAMES = ["notCa", "noKeyCertSign", "subIntermediate", "expiredIntermediate"] as const;
export type ExtraCaName = (typeof EXTRA_CA_NAMES)[number];

/** Leaves carrying alice's identity (subject, SAN email, UPN) with one defect each. */
export const ALICE_IDENTITY_LEAVES = [
  "alice",
  "expired",
  "notYetValid",
  "otherCa",
  "selfSigned",
  "noClientAuth",
  "noEku",
  "anyEku",
  "caAsLeaf",
  "noDigitalSignature",
  "unknownCritical",
  "notCaIntermediateLeaf",
  "noKeyCertSignLeaf",
  "pathLenLeaf",
  "expiredIntermediateLeaf",
] as const satisfies readonly LeafName[];

export interface IssuedCertificate {
  name: string;
  certificate: x509.X509Certificate;
  der: Uint8Array;
  pem: string;
  /** PKCS#8 PEM ("BEGIN PRIVATE KEY"), unencrypted. */
  keyPem: string;
  /** Upper-case hex, no colons, without the DER sign pad byte. */
  serialHex: string;
  /** The same serial in decimal. */
  serialDecimal: string;
}

export interface CrlFile {
  der: Uint8Array;
  pem: string;
  thisUpdate: Date;
  nextUpdate: Date;
}

export interface ClientPki {
  /** Self-signed "CN=smtpgate Test Root CA,O=smtpgate tests": cA (critical), KU keyCertSign+cRLSign (critical), SKI. */
  root: IssuedCertificate;
  /** Signed by root: cA pathLen 0 (critical), KU keyCertSign+cRLSign (critical), AKI, SKI. Issues the leaves. */
  intermediate: IssuedCertificate;
  /** An unrelated self-signed root CA (issues `otherCa`). */
  otherRoot: IssuedCertificate;
  leaves: Record<LeafName, IssuedCertificate>;
  /** CA certs in chains that need extra ones: notCa, noKeyCertSign, subIntermediate, expiredIntermediate. */
  extraCas: Record<ExtraCaName, IssuedCertificate>;
  crls: {
    intermediateCurrent: CrlFile;
    intermediateStale: CrlFile;
    intermediateWrongKey: CrlFile;
    rootCurrent: CrlFile;
  };
  /** Base64 DER chain, leaf first, including the intermediates needed (never the root). */
  chain(leaf: LeafName): string[];
  /** Trust anchors bundle for profiles (root only). */
  rootPem: string;
}

export interface ClientPkiOptions {
  /**
   * Base URL of a CRL server (no trailing slash). When given, every leaf issued by the intermediate gets the CRL
   * distribution point `${crlBaseUrl}/intermediate.crl`, and the intermediate gets `${crlBaseUrl}/root.crl`.
   */
  crlBaseUrl?: string;
  /** Skip the per-process cache (by default one PKI per crlBaseUrl and process). */
  fresh?: boolean;
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

interface Issuer {
  certificate: x509.X509Certificate;
  keys: CryptoKeyPair;
}

const randomBytes = (n: number): Uint8Array => globalThis.crypto.getRandomValues(new Uint8Array(n));

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

function pemOf(der: ArrayBuffer | Uint8Array, tag: string): string {
  return x509.PemConverter.encode(der instanceof Uint8Array ? der : new Uint8Array(der), tag) + "\n";
}

async function newKeys(): Promise<CryptoKeyPair> {
  return (await globalThis.crypto.subtle.generateKey(EC_KEY, true, ["sign", "verify"])) as CryptoKeyPair;
}

async function issued(
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

async function makeCert(spec: CertSpec): Promise<{ certificate: x509.X509Certificate; keys: CryptoKeyPair }> {
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

const KU = x509.KeyUsageFlags;

function caExtensions(pathLength?: number): x509.Extension[] {
  return [
    new x509.BasicConstraintsExtension(true, pathLength, true),
    new x509.KeyUsagesExtension(KU.keyCertSign | KU.cRLSign, true),
  ];
}

/** DER of the CRL Number extension value (INTEGER n, n < 128). */
function crlNumber(n: number): x509.Extension {
  return new x509.Extension("2.5.29.20", false, new Uint8Array([0x02, 0x01, n]));
}

async function makeCrl(
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

// ---------------------------------------------------------------------------------------------------------------
// The PKI

const cache = new Map<string, Promise<ClientPki>>();

/** Makes (or returns this process's cached) client PKI; see the file header and ClientPki. */
export function generateClientPki(options: ClientPkiOptions = {}): Promise<ClientPki> {
  if (options.fresh) return buildClientPki(options.crlBaseUrl);
  const key = options.crlBaseUrl ?? "";
  let pki = cache.get(key);
  if (!pki) {
    pki = buildClientPki(options.crlBaseUrl);
    cache.set(key, pki);
    pki.catch(() => cache.delete(key));
  }
  return pki;
}

async function buildClientPki(crlBaseUrl: string | undefined): Promise<ClientPki> {
  const now = Date.now();
  const at = (ms: number): Date => new Date(now + ms);
  const caValidity = { notBefore: at(-2 * DAY), notAfter: at(3650 * DAY) };
  const leafValidity = { notBefore: at(-DAY), notAfter: at(365 * DAY) };

  // CAs
  const root: Issuer = await makeCert({ subject: ROOT_SUBJECT, ...caValidity, extensions: caExtensions() });
  const otherRoot: Issuer = await makeCert({ subject: OTHER_ROOT_SUBJECT, ...caValidity, extensions: caExtensions() });

  const intermediate: Issuer = await makeCert({
    subject: INTERMEDIATE_SUBJECT,
    issuer: root,
    ...caValidity,
    extensions: [
      ...caExtensions(0),
      ...(crlBaseUrl ? [new x509.CRLDistributionPointsExtension([`${crlBaseUrl}/root.crl`])] : []),
    ],
  });

  const extraCaMade: Record<ExtraCaName, Issuer> = {
    notCa: await makeCert({
      subject: "CN=smtpgate Test Not-A-CA,O=smtpgate tests",
      issuer: root,
      ...caValidity,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(KU.keyCertSign | KU.cRLSign, true),
      ],
    }),
    noKeyCertSign: await makeCert({
      subject: "CN=smtpgate Test CA Without keyCertSign,O=smtpgate tests",
      issuer: root,
      ...caValidity,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(KU.digitalSignature, true),
      ],
    }),
    subIntermediate: await makeCert({
      subject: "CN=smtpgate Test Sub-Intermediate CA,O=smtpgate tests",
      issuer: intermediate,
      ...caValidity,
      extensions: caExtensions(),
    }),
    expiredIntermediate: await makeCert({
      subject: "CN=smtpgate Test Expired Intermediate CA,O=smtpgate tests",
      issuer: root,
      notBefore: at(-400 * DAY),
      notAfter: at(-DAY),
      extensions: caExtensions(0),
    }),
  };

  // Leaves
  const cdp = crlBaseUrl ? [new x509.CRLDistributionPointsExtension([`${crlBaseUrl}/intermediate.crl`])] : [];
  const ALICE = "CN=alice,O=Example,C=US";
  const san = (uid: string, upn?: string): x509.Extension =>
    new x509.SubjectAlternativeNameExtension([
      { type: "email", value: `${uid}@example.com` },
      ...(upn ? [{ type: "upn" as const, value: upn }] : []),
    ]);
  const aliceSan = (): x509.Extension => san("alice", "alice@corp.example.com");
  const ku = (flags: number = KU.digitalSignature): x509.Extension => new x509.KeyUsagesExtension(flags, true);
  const eku = (...usages: string[]): x509.Extension =>
    new x509.ExtendedKeyUsageExtension(usages.length ? usages : [OID_CLIENT_AUTH]);
  const notCa = (): x509.Extension => new x509.BasicConstraintsExtension(false);

  interface LeafSpec {
    subject: string;
    issuer: Issuer | "self";
    /** Chain after the leaf (never the root). */
    chain: Issuer[];
    extensions: x509.Extension[];
    notBefore?: Date;
    notAfter?: Date;
    serial?: Uint8Array;
  }
  /** The standard leaf profile issued by the intermediate, with alice's identity unless told otherwise. */
  const std = (overrides: Partial<LeafSpec> = {}): LeafSpec => ({
    subject: ALICE,
    issuer: intermediate,
    chain: [intermediate],
    extensions: [notCa(), ku(), eku(), aliceSan(), ...cdp],
    ...overrides,
  });
  const aliceProfile = (issuer: Issuer, chain: Issuer[]): LeafSpec => ({
    subject: ALICE,
    issuer,
    chain,
    extensions: [notCa(), ku(), eku(), aliceSan()],
  });

  const erinSerial = new Uint8Array([0xff, 0x01, ...randomBytes(6)]);
  const leafSpecs: Record<LeafName, LeafSpec> = {
    alice: std(),
    bob: std({ subject: "CN=bob,O=Example,C=US", extensions: [notCa(), ku(), eku(), san("bob"), ...cdp] }),
    carol: std({ subject: "CN=carol,O=Example,C=US", extensions: [notCa(), ku(), eku(), san("carol"), ...cdp] }),
    expired: std({ notBefore: at(-30 * DAY), notAfter: at(-DAY) }),
    notYetValid: std({ notBefore: at(DAY), notAfter: at(366 * DAY) }),
    otherCa: aliceProfile(otherRoot, []),
    selfSigned: { ...aliceProfile(root, []), issuer: "self" },
    revoked: std({ subject: "CN=revoked,O=Example,C=US", extensions: [notCa(), ku(), eku(), san("revoked"), ...cdp] }),
    noClientAuth: std({ extensions: [notCa(), ku(), eku(OID_SERVER_AUTH), aliceSan(), ...cdp] }),
    noEku: std({ extensions: [notCa(), ku(), aliceSan(), ...cdp] }),
    anyEku: std({ extensions: [notCa(), ku(), eku(OID_ANY_EKU), aliceSan(), ...cdp] }),
    caAsLeaf: {
      subject: ALICE,
      issuer: root,
      chain: [],
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        ku(KU.keyCertSign | KU.digitalSignature),
        eku(),
        aliceSan(),
      ],
    },
    noDigitalSignature: std({ extensions: [notCa(), ku(KU.keyEncipherment), eku(), aliceSan(), ...cdp] }),
    unknownCritical: std({
      extensions: [
        notCa(),
        ku(),
        eku(),
        aliceSan(),
        ...cdp,
        new x509.Extension(OID_UNKNOWN_CRITICAL, true, new Uint8Array([0x05, 0x00])),
      ],
    }),
    subjectEmailOnly: std({
      subject: "CN=dave,emailAddress=dave@example.com",
      extensions: [notCa(), ku(), eku(), ...cdp],
    }),
    notCaIntermediateLeaf: aliceProfile(extraCaMade.notCa, [extraCaMade.notCa]),
    noKeyCertSignLeaf: aliceProfile(extraCaMade.noKeyCertSign, [extraCaMade.noKeyCertSign]),
    pathLenLeaf: aliceProfile(extraCaMade.subIntermediate, [extraCaMade.subIntermediate, intermediate]),
    expiredIntermediateLeaf: aliceProfile(extraCaMade.expiredIntermediate, [extraCaMade.expiredIntermediate]),
    serialLeadingZero: std({
      subject: "CN=erin,O=Example,C=US",
      serial: erinSerial,
      extensions: [notCa(), ku(), eku(), san("erin"), ...cdp],
    }),
  };

  const made = await Promise.all(
    LEAF_NAMES.map(async (name) => {
      const spec = leafSpecs[name];
      const m = await makeCert({
        subject: spec.subject,
        issuer: spec.issuer === "self" ? undefined : spec.issuer,
        notBefore: spec.notBefore ?? leafValidity.notBefore,
        notAfter: spec.notAfter ?? leafValidity.notAfter,
        extensions: spec.extensions,
        serial: spec.serial,
      });
      return [name, await issued(name, m.certificate, m.keys)] as const;
    }),
  );
  const leaves = Object.fromEntries(made) as Record<LeafName, IssuedCertificate>;

  const rootIssued = await issued("root", root.certificate, root.keys);
  const intermediateIssued = await issued("intermediate", intermediate.certificate, intermediate.keys);
  const extraCas = Object.fromEntries(
    await Promise.all(
      EXTRA_CA_NAMES.map(async (n) => [n, await issued(n, extraCaMade[n].certificate, extraCaMade[n].keys)] as const),
    ),
  ) as Record<ExtraCaName, IssuedCertificate>;

  // CRLs
  const wrongKeys = await newKeys();
  const intermediateKey = intermediate.keys.privateKey;
  const revoked = [leaves.revoked];
  const crls = {
    intermediateCurrent: await makeCrl(intermediate, intermediateKey, at(-HOUR), at(7 * DAY), revoked, 2),
    intermediateStale: await makeCrl(intermediate, intermediateKey, at(-2 * DAY), at(-HOUR), revoked, 1),
    intermediateWrongKey: await makeCrl(intermediate, wrongKeys.privateKey, at(-HOUR), at(7 * DAY), revoked, 3),
    rootCurrent: await makeCrl(root, root.keys.privateKey, at(-HOUR), at(7 * DAY), [], 1),
  };

  const b64 = (c: x509.X509Certificate): string => Buffer.from(c.rawData).toString("base64");
  const chains = Object.fromEntries(
    LEAF_NAMES.map((n) => [n, [b64(leaves[n].certificate), ...leafSpecs[n].chain.map((i) => b64(i.certificate))]]),
  ) as Record<LeafName, string[]>;

  return {
    root: rootIssued,
    intermediate: intermediateIssued,
    otherRoot: await issued("otherRoot", otherRoot.certificate, otherRoot.keys),
    leaves,
    extraCas,
    crls,
    chain: (leaf) => [...chains[leaf]],
    rootPem: rootIssued.pem,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Files

/**
 * Writes the PKI into `dir` (created if missing) and returns file name → absolute path:
 * - `<name>.pem` and `<name>.key` for root, intermediate, otherRoot, every leaf and every extra CA;
 * - `<leaf>.chain.pem`: the leaf followed by the chain(leaf) intermediates (no root);
 * - `<crl>.crl` (DER) and `<crl>.crl.pem` for intermediateCurrent, intermediateStale, intermediateWrongKey,
 *   rootCurrent;
 * - `trust.pem`: the root (the trust-anchor bundle).
 */
export async function writeClientPki(pki: ClientPki, dir: string): Promise<Record<string, string>> {
  await mkdir(dir, { recursive: true });
  const files: Record<string, string | Uint8Array> = { "trust.pem": pki.rootPem };
  const certs: [string, IssuedCertificate][] = [
    ["root", pki.root],
    ["intermediate", pki.intermediate],
    ["otherRoot", pki.otherRoot],
    ...Object.entries(pki.extraCas),
    ...Object.entries(pki.leaves),
  ];
  for (const [name, c] of certs) {
    files[`${name}.pem`] = c.pem;
    files[`${name}.key`] = c.keyPem;
  }
  for (const name of LEAF_NAMES) {
    files[`${name}.chain.pem`] = pki
      .chain(name)
      .map((b64) => pemOf(Buffer.from(b64, "base64"), "CERTIFICATE"))
      .join("");
  }
  for (const [name, crl] of Object.entries(pki.crls)) {
    files[`${name}.crl`] = crl.der;
    files[`${name}.crl.pem`] = crl.pem;
  }
  const paths: Record<string, string> = {};
  await Promise.all(
    Object.entries(files).map(async ([name, body]) => {
      const path = join(dir, name);
      await writeFile(path, body, { mode: name.endsWith(".key") ? 0o600 : 0o644 });
      paths[name] = path;
    }),
  );
  return paths;
}
