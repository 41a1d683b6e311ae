// A throw-away client-certificate PKI for the certificate-authentication tests, made at run time with
// @peculiar/x509 and WebCrypto (ECDSA P-256, SHA-256): a root CA, an intermediate CA (pathLen 0) that issues the
// client certificates, an unrelated root, a set of leaves with exactly one defect each, a few broken CAs for
// chain defects, and CRLs (current, stale, wrongly signed, and an empty one of the root). What it holds:
// contents.ts; how a certificate or CRL is issued: issue.ts; the PKI as files: files.ts.
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
import {
  EXTRA_CA_NAMES,
  INTERMEDIATE_SUBJECT,
  LEAF_NAMES,
  OID_ANY_EKU,
  OID_CLIENT_AUTH,
  OID_SERVER_AUTH,
  OID_UNKNOWN_CRITICAL,
  OTHER_ROOT_SUBJECT,
  ROOT_SUBJECT,
  type ClientPki,
  type ClientPkiOptions,
  type ExtraCaName,
  type IssuedCertificate,
  type LeafName,
} from "./contents.ts";
import { caExtensions, DAY, HOUR, issued, KU, makeCert, makeCrl, newKeys, randomBytes, type Issuer } from "./issue.ts";

export * from "./contents.ts";
export { writeClientPki } from "./files.ts";

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
