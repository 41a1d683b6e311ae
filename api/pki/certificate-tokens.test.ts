import { beforeAll, describe, expect, it } from "vitest";
import { generateClientPki, type ClientPki } from "../../dev/client-pki/index.ts";
import { certificateTokens, escapeDnValue, rfc4514 } from "./certificate-tokens.ts";
import { x509 } from "./x509.ts";
import { createHash } from "node:crypto";

let pki: ClientPki;
beforeAll(async () => {
  pki = await generateClientPki();
});

describe("certificate tokens (docs/certificates.md#certificate-tokens)", () => {
  it("reads alice's tokens", () => {
    const alice = pki.leaves.alice;
    const tokens = certificateTokens(alice.certificate, alice.der);
    expect(tokens).toMatchObject({
      cn: "alice",
      sn: alice.serialHex,
      sn10: alice.serialDecimal,
      subject: "CN=alice,O=Example,C=US",
      email: "alice@example.com",
      upn: "alice@corp.example.com",
      fp_sha256: createHash("sha256").update(alice.der).digest("hex"),
    });
    expect(tokens.issuer).toMatch(/^CN=smtpgate Test Intermediate CA,/);
    expect(tokens.spki_sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("writes the serial in upper-case hex without the DER pad byte, and in decimal", () => {
    const erin = pki.leaves.serialLeadingZero;
    const tokens = certificateTokens(erin.certificate, erin.der);
    expect(tokens.sn).toMatch(/^FF01[0-9A-F]+$/);
    expect(BigInt(`0x${tokens.sn}`).toString(10)).toBe(tokens.sn10);
  });

  it("falls back to the subject emailAddress when there is no SAN email", () => {
    const dave = pki.leaves.subjectEmailOnly;
    const tokens = certificateTokens(dave.certificate, dave.der);
    expect(tokens.email).toBe("dave@example.com");
    expect(tokens.upn).toBeUndefined();
    // emailAddress has no RFC 4514 short name: it is written as its OID.
    expect(tokens.subject).toBe("CN=dave,1.2.840.113549.1.9.1=dave@example.com");
  });

  it("leaves absent fields undefined (a query using them fails closed)", () => {
    const bob = pki.leaves.bob;
    expect(certificateTokens(bob.certificate, bob.der).upn).toBeUndefined();
  });

  it("escapes RFC 4514 specials in DN strings", () => {
    expect(escapeDnValue('a,b+c"d\\e<f>g;h')).toBe('a\\,b\\+c\\"d\\\\e\\<f\\>g\\;h');
    expect(escapeDnValue("#x")).toBe("\\#x");
    expect(escapeDnValue(" x ")).toBe("\\ x\\ ");
    expect(escapeDnValue(" ")).toBe("\\ ");
    expect(escapeDnValue("a\\ ")).toBe("a\\\\\\ ");
    expect(escapeDnValue("x\u0000#")).toBe("x\\00#");
  });

  it("uses RFC 4514 short names only where RFC 4514 has them, dotted OIDs elsewhere, and the most specific CN", async () => {
    const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
    const certificate = await x509.X509CertificateGenerator.createSelfSigned({
      name: [
        { DC: ["com"] },
        { DC: ["corp"] },
        { CN: ["Users"] },
        { CN: ["alice"] },
        { "0.9.2342.19200300.100.1.1": ["a1"] },
        { SN: ["Smith"] },
      ],
      keys,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000),
    });
    const tokens = certificateTokens(certificate, new Uint8Array(certificate.rawData));
    expect(tokens.subject).toBe("2.5.4.4=Smith,UID=a1,CN=alice,CN=Users,DC=corp,DC=com");
    expect(tokens.cn).toBe("alice");
  });

  it("writes a subject in RFC 4514 order with escaped values", () => {
    const name = new x509.Name([{ C: ["US"] }, { O: ["Example, Inc."] }, { CN: ["a+b"] }]);
    expect(rfc4514(name)).toBe("CN=a\\+b,O=Example\\, Inc.,C=US");
  });
});
