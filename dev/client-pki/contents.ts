// What the client PKI holds: the names of its leaves and CAs, the OIDs and subjects the tests look for, and the
// shapes of an issued certificate, a CRL and the whole PKI (see index.ts for how each one is made).
import type * as x509 from "@peculiar/x509";

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
