// Proves the client-certificate fixtures: every leaf has exactly the defect its name says (checked with
// @peculiar/x509), and chains and CRLs verify where they should. (openssl's opinion of the same: files.test.ts; the
// CRL server: ../crl-server.test.ts; the cert-mapping directory data: directory-entries.test.ts.)
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { X509Certificate as NodeX509Certificate } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import {
  ALICE_IDENTITY_LEAVES,
  LEAF_NAMES,
  OID_ANY_EKU,
  OID_CLIENT_AUTH,
  OID_EMAIL_ADDRESS,
  OID_SERVER_AUTH,
  OID_UNKNOWN_CRITICAL,
  OID_UPN,
  generateClientPki,
} from "./index.ts";
import type { ClientPki, IssuedCertificate, LeafName } from "./index.ts";

const DAY = 86_400_000;
const KU = x509.KeyUsageFlags;

const ext = <T extends x509.Extension>(c: IssuedCertificate, type: new (raw: ArrayBuffer) => T): T | null =>
  c.certificate.getExtension(type);
const bc = (c: IssuedCertificate): x509.BasicConstraintsExtension | null => ext(c, x509.BasicConstraintsExtension);
const ku = (c: IssuedCertificate): x509.KeyUsagesExtension | null => ext(c, x509.KeyUsagesExtension);
const ekus = (c: IssuedCertificate): string[] | undefined => ext(c, x509.ExtendedKeyUsageExtension)?.usages.map(String);
const sanOf = (c: IssuedCertificate): { type: string; value: string }[] =>
  ext(c, x509.SubjectAlternativeNameExtension)?.names.toJSON() ?? [];
const fromB64 = (b64: string): x509.X509Certificate => new x509.X509Certificate(Buffer.from(b64, "base64"));

describe("client PKI", () => {
  let pki: ClientPki;
  let crlBaseUrl: string;
  let generationMs: number;

  beforeAll(async () => {
    crlBaseUrl = "http://127.0.0.1:9/crls";
    const t0 = performance.now();
    pki = await generateClientPki({ crlBaseUrl, fresh: true });
    generationMs = performance.now() - t0;
  });

  it("is made quickly and cached per process", async () => {
    expect(generationMs).toBeLessThan(3_000);
    const a = await generateClientPki();
    expect(await generateClientPki()).toBe(a);
    expect(a).not.toBe(pki);
  });

  it("root: self-signed CA with critical basicConstraints and keyCertSign+cRLSign, SKI", async () => {
    const { root } = pki;
    expect(root.certificate.subjectName.getField("CN")).toEqual(["smtpgate Test Root CA"]);
    expect(root.certificate.subjectName.getField("O")).toEqual(["smtpgate tests"]);
    expect(await root.certificate.isSelfSigned()).toBe(true);
    expect(bc(root)).toMatchObject({ ca: true, critical: true });
    expect(bc(root)?.pathLength).toBeUndefined();
    expect(ku(root)).toMatchObject({ usages: KU.keyCertSign | KU.cRLSign, critical: true });
    expect(ext(root, x509.SubjectKeyIdentifierExtension)).not.toBeNull();
    expect(pki.rootPem).toBe(root.pem);
    expect(pki.rootPem.match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
  });

  it("intermediate: signed by root, cA pathLen 0, keyCertSign+cRLSign, AKI = root SKI, CDP root.crl", async () => {
    const { intermediate, root } = pki;
    expect(await intermediate.certificate.verify({ publicKey: root.certificate.publicKey })).toBe(true);
    expect(bc(intermediate)).toMatchObject({ ca: true, pathLength: 0, critical: true });
    expect(ku(intermediate)).toMatchObject({ usages: KU.keyCertSign | KU.cRLSign, critical: true });
    const aki = ext(intermediate, x509.AuthorityKeyIdentifierExtension);
    expect(aki?.keyId).toBe(ext(root, x509.SubjectKeyIdentifierExtension)?.keyId);
    const cdp = ext(intermediate, x509.CRLDistributionPointsExtension);
    expect(cdp?.distributionPoints[0]?.distributionPoint?.fullName?.[0]?.uniformResourceIdentifier).toBe(
      `${crlBaseUrl}/root.crl`,
    );
  });

  it("otherRoot is an unrelated CA", async () => {
    expect(await pki.otherRoot.certificate.isSelfSigned()).toBe(true);
    expect(bc(pki.otherRoot)?.ca).toBe(true);
    expect(
      await pki.otherRoot.certificate.verify({ publicKey: pki.root.certificate.publicKey, signatureOnly: true }),
    ).toBe(false);
  });

  it("serials: upper-case hex without pad, decimal, 8..16 bytes, unique; erin's needs a DER pad byte", () => {
    const all = [
      pki.root,
      pki.intermediate,
      pki.otherRoot,
      ...Object.values(pki.extraCas),
      ...Object.values(pki.leaves),
    ];
    for (const c of all) {
      expect(c.serialHex).toMatch(/^[1-9A-F][0-9A-F]*$/);
      expect(c.serialHex).toBe(c.certificate.serialNumber.toUpperCase().replace(/^00/, ""));
      expect(c.serialDecimal).toBe(BigInt(`0x${c.serialHex}`).toString());
      expect(c.serialHex.length / 2).toBeGreaterThanOrEqual(8);
      expect(c.serialHex.length / 2).toBeLessThanOrEqual(16);
    }
    expect(new Set(all.map((c) => c.serialHex)).size).toBe(all.length);
    const erin = pki.leaves.serialLeadingZero;
    expect(erin.serialHex).toMatch(/^FF01[0-9A-F]{12}$/);
    // DER: TBSCertificate SEQUENCE, [0] version, then INTEGER with content 00 FF 01 ...
    const der = Buffer.from(erin.der).toString("hex").toUpperCase();
    expect(der).toContain(`020900${erin.serialHex}`);
    expect(erin.certificate.subjectName.getField("CN")).toEqual(["erin"]);
  });

  describe("leaves", () => {
    const validNow = (c: IssuedCertificate): boolean =>
      c.certificate.notBefore.getTime() < Date.now() && Date.now() < c.certificate.notAfter.getTime();

    it("alice: valid, clientAuth, digitalSignature, SAN email + UPN, CRL DP, subject CN=alice,O=Example,C=US", () => {
      const alice = pki.leaves.alice;
      const name = alice.certificate.subjectName;
      expect(name.getField("CN")).toEqual(["alice"]);
      expect(name.getField("O")).toEqual(["Example"]);
      expect(name.getField("C")).toEqual(["US"]);
      // RFC 4514 order means DER order C, O, CN
      expect(alice.certificate.subject).toBe("C=US, O=Example, CN=alice");
      expect(new NodeX509Certificate(alice.der).subject).toBe("C=US\nO=Example\nCN=alice");
      expect(validNow(alice)).toBe(true);
      expect(alice.certificate.notAfter.getTime() - Date.now()).toBeGreaterThan(360 * DAY);
      expect(ekus(alice)).toEqual([OID_CLIENT_AUTH]);
      expect(ku(alice)).toMatchObject({ usages: KU.digitalSignature, critical: true });
      expect(bc(alice)?.ca).toBe(false);
      expect(sanOf(alice)).toEqual([
        { type: "email", value: "alice@example.com" },
        { type: "upn", value: "alice@corp.example.com" },
      ]);
      const cdp = ext(alice, x509.CRLDistributionPointsExtension);
      expect(cdp?.distributionPoints[0]?.distributionPoint?.fullName?.[0]?.uniformResourceIdentifier).toBe(
        `${crlBaseUrl}/intermediate.crl`,
      );
      expect(alice.certificate.issuer).toBe(pki.intermediate.certificate.subject);
    });

    it("the UPN is a SAN otherName with type-id 1.3.6.1.4.1.311.20.2.3 and a [0] EXPLICIT UTF8String", () => {
      const raw = Buffer.from(ext(pki.leaves.alice, x509.SubjectAlternativeNameExtension)?.value ?? new ArrayBuffer(0));
      const oid = Buffer.from("060a2b060104018237140203", "hex"); // OID 1.3.6.1.4.1.311.20.2.3
      const value = Buffer.from("alice@corp.example.com");
      const otherName = Buffer.concat([
        Buffer.from([0xa0, oid.length + 4 + value.length]), // [0] otherName (implicit SEQUENCE)
        oid,
        Buffer.from([0xa0, value.length + 2, 0x0c, value.length]), // [0] EXPLICIT UTF8String
        value,
      ]);
      expect(raw.includes(otherName)).toBe(true);
      expect(OID_UPN).toBe("1.3.6.1.4.1.311.20.2.3");
      expect(new NodeX509Certificate(pki.leaves.alice.der).subjectAltName).toContain("alice@corp.example.com");
    });

    it("bob, carol: valid with their own SAN emails", () => {
      for (const [name, uid] of [
        ["bob", "bob"],
        ["carol", "carol"],
      ] as const) {
        const c = pki.leaves[name];
        expect(validNow(c)).toBe(true);
        expect(c.certificate.subjectName.getField("CN")).toEqual([uid]);
        expect(sanOf(c)).toEqual([{ type: "email", value: `${uid}@example.com` }]);
        expect(ekus(c)).toEqual([OID_CLIENT_AUTH]);
      }
    });

    it("all leaves but bob, carol, revoked, subjectEmailOnly and serialLeadingZero carry alice's identity", () => {
      for (const name of ALICE_IDENTITY_LEAVES) {
        const c = pki.leaves[name];
        expect(c.certificate.subject, name).toBe("C=US, O=Example, CN=alice");
        expect(sanOf(c), name).toEqual([
          { type: "email", value: "alice@example.com" },
          { type: "upn", value: "alice@corp.example.com" },
        ]);
      }
    });

    it("expired: notAfter yesterday; notYetValid: notBefore tomorrow", () => {
      const { expired, notYetValid } = pki.leaves;
      expect(expired.certificate.notAfter.getTime()).toBeLessThan(Date.now() - DAY + 60_000);
      expect(expired.certificate.notAfter.getTime()).toBeGreaterThan(Date.now() - 2 * DAY);
      expect(notYetValid.certificate.notBefore.getTime()).toBeGreaterThan(Date.now() + DAY - 60_000);
      expect(notYetValid.certificate.notBefore.getTime()).toBeLessThan(Date.now() + 2 * DAY);
      for (const c of [expired, notYetValid]) {
        expect(ekus(c)).toEqual([OID_CLIENT_AUTH]);
        expect(c.certificate.issuer).toBe(pki.intermediate.certificate.subject);
      }
    });

    it("otherCa: issued by otherRoot; selfSigned: self-signed with clientAuth", async () => {
      const { otherCa, selfSigned } = pki.leaves;
      expect(await otherCa.certificate.verify({ publicKey: pki.otherRoot.certificate.publicKey })).toBe(true);
      expect(otherCa.certificate.issuer).toBe(pki.otherRoot.certificate.subject);
      expect(await selfSigned.certificate.isSelfSigned()).toBe(true);
      expect(ekus(selfSigned)).toEqual([OID_CLIENT_AUTH]);
      expect(bc(selfSigned)?.ca).toBe(false);
    });

    it("revoked: CN=revoked, otherwise a valid leaf", () => {
      const { revoked } = pki.leaves;
      expect(revoked.certificate.subjectName.getField("CN")).toEqual(["revoked"]);
      expect(validNow(revoked)).toBe(true);
      expect(ekus(revoked)).toEqual([OID_CLIENT_AUTH]);
    });

    it("EKU defects: noClientAuth = serverAuth only, noEku = none, anyEku = anyExtendedKeyUsage", () => {
      expect(ekus(pki.leaves.noClientAuth)).toEqual([OID_SERVER_AUTH]);
      expect(ekus(pki.leaves.noEku)).toBeUndefined();
      expect(pki.leaves.noEku.certificate.getExtension("2.5.29.37")).toBeNull();
      expect(ekus(pki.leaves.anyEku)).toEqual([OID_ANY_EKU]);
    });

    it("caAsLeaf: cA=true, keyCertSign+digitalSignature, clientAuth, issued by the root", async () => {
      const c = pki.leaves.caAsLeaf;
      expect(bc(c)).toMatchObject({ ca: true, critical: true });
      expect(ku(c)?.usages).toBe(KU.keyCertSign | KU.digitalSignature);
      expect(ekus(c)).toEqual([OID_CLIENT_AUTH]);
      expect(await c.certificate.verify({ publicKey: pki.root.certificate.publicKey })).toBe(true);
    });

    it("noDigitalSignature: KU keyEncipherment only", () => {
      expect(ku(pki.leaves.noDigitalSignature)).toMatchObject({ usages: KU.keyEncipherment, critical: true });
    });

    it("unknownCritical: carries critical 1.3.6.1.4.1.55555.1; other leaves carry no unknown extension", () => {
      const e = pki.leaves.unknownCritical.certificate.getExtension(OID_UNKNOWN_CRITICAL);
      expect(e?.critical).toBe(true);
      for (const name of LEAF_NAMES.filter((n) => n !== "unknownCritical")) {
        expect(pki.leaves[name].certificate.getExtension(OID_UNKNOWN_CRITICAL), name).toBeNull();
      }
    });

    it("subjectEmailOnly: CN=dave plus emailAddress in the subject, no SAN", () => {
      const c = pki.leaves.subjectEmailOnly;
      expect(c.certificate.subjectName.getField("CN")).toEqual(["dave"]);
      expect(c.certificate.subjectName.getField(OID_EMAIL_ADDRESS)).toEqual(["dave@example.com"]);
      expect(c.certificate.getExtension(x509.SubjectAlternativeNameExtension)).toBeNull();
    });

    it("chain defects: notCa (cA=false), noKeyCertSign, subIntermediate (pathLen), expiredIntermediate", async () => {
      const { extraCas, leaves, root, intermediate } = pki;
      expect(bc(extraCas.notCa)?.ca).toBe(false);
      expect(bc(extraCas.noKeyCertSign)?.ca).toBe(true);
      expect(ku(extraCas.noKeyCertSign)?.usages).toBe(KU.digitalSignature);
      expect(bc(extraCas.subIntermediate)?.ca).toBe(true);
      expect(await extraCas.subIntermediate.certificate.verify({ publicKey: intermediate.certificate.publicKey })).toBe(
        true,
      );
      expect(extraCas.expiredIntermediate.certificate.notAfter.getTime()).toBeLessThan(Date.now());
      for (const ca of [extraCas.notCa, extraCas.noKeyCertSign, extraCas.expiredIntermediate]) {
        expect(await ca.certificate.verify({ publicKey: root.certificate.publicKey, signatureOnly: true })).toBe(true);
      }
      expect(validNow(leaves.expiredIntermediateLeaf)).toBe(true);
      expect(leaves.notCaIntermediateLeaf.certificate.issuer).toBe(extraCas.notCa.certificate.subject);
      expect(leaves.noKeyCertSignLeaf.certificate.issuer).toBe(extraCas.noKeyCertSign.certificate.subject);
      expect(leaves.pathLenLeaf.certificate.issuer).toBe(extraCas.subIntermediate.certificate.subject);
      expect(leaves.expiredIntermediateLeaf.certificate.issuer).toBe(extraCas.expiredIntermediate.certificate.subject);
    });

    it("the standard profile holds where no defect is intended", () => {
      const clean: LeafName[] = ["alice", "bob", "carol", "revoked", "subjectEmailOnly", "serialLeadingZero"];
      for (const name of clean) {
        const c = pki.leaves[name];
        expect(validNow(c), name).toBe(true);
        expect(ekus(c), name).toEqual([OID_CLIENT_AUTH]);
        expect(ku(c), name).toMatchObject({ usages: KU.digitalSignature, critical: true });
        expect(bc(c)?.ca, name).toBe(false);
        expect(c.certificate.issuer, name).toBe(pki.intermediate.certificate.subject);
      }
    });

    it("keys: PKCS#8 PEM matching the certificate", async () => {
      for (const c of Object.values(pki.leaves)) {
        expect(c.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
        const key = await crypto.subtle.importKey(
          "pkcs8",
          x509.PemConverter.decodeFirst(c.keyPem),
          { name: "ECDSA", namedCurve: "P-256" },
          true,
          ["sign"],
        );
        const data = new TextEncoder().encode("proof");
        const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, data);
        const pub = await c.certificate.publicKey.export({ name: "ECDSA", namedCurve: "P-256" }, ["verify"]);
        expect(await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, pub, sig, data), c.name).toBe(true);
      }
    });
  });

  describe("chains", () => {
    /** Verifies each chain link's signature; returns the last certificate of the chain. */
    async function verifyLinks(leaf: LeafName): Promise<x509.X509Certificate> {
      const certs = pki.chain(leaf).map(fromB64);
      for (let i = 0; i + 1 < certs.length; i++) {
        const [child, parent] = [certs[i], certs[i + 1]];
        if (!child || !parent) throw new Error("unreachable");
        const ok = await child.verify({ publicKey: parent.publicKey, signatureOnly: true });
        expect(ok, `${leaf} link ${i}`).toBe(true);
        expect(child.issuer).toBe(parent.subject);
      }
      const last = certs.at(-1);
      if (!last) throw new Error("empty chain");
      return last;
    }

    it("chain(leaf) is leaf first and never includes the root", () => {
      for (const name of LEAF_NAMES) {
        const chain = pki.chain(name);
        expect(chain[0], name).toBe(Buffer.from(pki.leaves[name].der).toString("base64"));
        expect(
          chain.map(fromB64).some((c) => c.subject === pki.root.certificate.subject),
          name,
        ).toBe(false);
      }
      const b64 = (c: IssuedCertificate): string => Buffer.from(c.der).toString("base64");
      expect(pki.chain("alice").slice(1)).toEqual([b64(pki.intermediate)]);
      expect(pki.chain("pathLenLeaf").slice(1)).toEqual([b64(pki.extraCas.subIntermediate), b64(pki.intermediate)]);
      expect(pki.chain("notCaIntermediateLeaf").slice(1)).toEqual([b64(pki.extraCas.notCa)]);
      expect(pki.chain("noKeyCertSignLeaf").slice(1)).toEqual([b64(pki.extraCas.noKeyCertSign)]);
      expect(pki.chain("expiredIntermediateLeaf").slice(1)).toEqual([b64(pki.extraCas.expiredIntermediate)]);
      for (const n of ["otherCa", "selfSigned", "caAsLeaf"] as const) expect(pki.chain(n)).toHaveLength(1);
    });

    it("every chain's signatures verify up to the root, except otherCa (otherRoot) and selfSigned", async () => {
      const rootKey = pki.root.certificate.publicKey;
      for (const name of LEAF_NAMES) {
        const last = await verifyLinks(name);
        const toRoot = await last.verify({ publicKey: rootKey, signatureOnly: true });
        expect(toRoot, name).toBe(name !== "otherCa" && name !== "selfSigned");
      }
      const otherRootKey = pki.otherRoot.certificate.publicKey;
      expect(await pki.leaves.otherCa.certificate.verify({ publicKey: otherRootKey })).toBe(true);
    });

    it("Node's X509Certificate agrees on alice's chain", () => {
      const [leaf, inter] = pki.chain("alice").map((b) => new NodeX509Certificate(Buffer.from(b, "base64")));
      const root = new NodeX509Certificate(pki.root.der);
      expect(leaf?.checkIssued(inter as NodeX509Certificate)).toBe(true);
      expect(leaf?.verify((inter as NodeX509Certificate).publicKey)).toBe(true);
      expect(inter?.verify(root.publicKey)).toBe(true);
      expect(inter?.ca).toBe(true);
      expect(leaf?.ca).toBe(false);
      expect(leaf?.serialNumber).toBe(pki.leaves.alice.serialHex);
    });
  });

  describe("CRLs", () => {
    const parse = (der: Uint8Array): x509.X509Crl => new x509.X509Crl(der);

    it("intermediateCurrent: signed by the intermediate, now-1h .. now+7d, revokes only `revoked`", async () => {
      const f = pki.crls.intermediateCurrent;
      const crl = parse(f.der);
      expect(crl.issuer).toBe(pki.intermediate.certificate.subject);
      expect(await crl.verify({ publicKey: pki.intermediate.certificate.publicKey })).toBe(true);
      expect(await crl.verify({ publicKey: pki.root.certificate.publicKey })).toBe(false);
      expect(Math.abs(f.thisUpdate.getTime() - (Date.now() - 3_600_000))).toBeLessThan(60_000);
      expect(Math.abs(f.nextUpdate.getTime() - (Date.now() + 7 * DAY))).toBeLessThan(60_000);
      expect(crl.thisUpdate.getTime()).toBe(f.thisUpdate.getTime());
      expect(crl.entries.map((e) => e.serialNumber.toUpperCase())).toEqual([pki.leaves.revoked.serialHex]);
      expect(crl.findRevoked(pki.leaves.revoked.certificate)).not.toBeNull();
      expect(crl.findRevoked(pki.leaves.alice.certificate)).toBeNull();
      expect(f.pem).toMatch(/^-----BEGIN X509 CRL-----\n/);
      expect(Buffer.from(x509.PemConverter.decodeFirst(f.pem))).toEqual(Buffer.from(f.der));
    });

    it("intermediateStale: valid signature, nextUpdate an hour ago, thisUpdate two days ago", async () => {
      const f = pki.crls.intermediateStale;
      const crl = parse(f.der);
      expect(await crl.verify({ publicKey: pki.intermediate.certificate.publicKey })).toBe(true);
      expect(f.nextUpdate.getTime()).toBeLessThan(Date.now() - 3_500_000);
      expect(f.thisUpdate.getTime()).toBeLessThan(Date.now() - 2 * DAY + 60_000);
      expect(crl.findRevoked(pki.leaves.revoked.serialHex)).not.toBeNull();
    });

    it("intermediateWrongKey: the intermediate's name, but its signature does not verify", async () => {
      const crl = parse(pki.crls.intermediateWrongKey.der);
      expect(crl.issuer).toBe(pki.intermediate.certificate.subject);
      expect(await crl.verify({ publicKey: pki.intermediate.certificate.publicKey })).toBe(false);
      expect(crl.findRevoked(pki.leaves.revoked.serialHex)).not.toBeNull();
    });

    it("rootCurrent: signed by the root, empty", async () => {
      const crl = parse(pki.crls.rootCurrent.der);
      expect(crl.issuer).toBe(pki.root.certificate.subject);
      expect(await crl.verify({ publicKey: pki.root.certificate.publicKey })).toBe(true);
      expect(crl.entries).toHaveLength(0);
    });
  });
});
