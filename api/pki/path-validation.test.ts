import { beforeAll, describe, expect, it } from "vitest";
import { generateClientPki, type ClientPki, type LeafName } from "../../dev/client-pki/index.ts";
import { parseChain, DEFAULT_CHAIN_LIMITS } from "./certificate-chain.ts";
import { validatePath } from "./path-validation.ts";

let pki: ClientPki;
beforeAll(async () => {
  pki = await generateClientPki();
});

async function validate(leaf: LeafName, options: { allowNoExtendedKeyUsage?: boolean; now?: Date } = {}) {
  const parsed = parseChain(pki.chain(leaf), DEFAULT_CHAIN_LIMITS);
  if (!parsed.ok) throw new Error(parsed.detail);
  return await validatePath(
    parsed.chain.map((item) => item.certificate),
    {
      anchors: [pki.root.certificate],
      now: options.now ?? new Date(),
      allowNoExtendedKeyUsage: options.allowNoExtendedKeyUsage ?? false,
    },
  );
}

describe("path validation (RFC 5280 §6)", () => {
  it("accepts a leaf through the intermediate up to the root", async () => {
    const result = await validate("alice");
    expect(result.ok).toBe(true);
    if (result.ok)
      expect(result.path.map((c) => c.subjectName.getField("CN")[0])).toEqual([
        "alice",
        "smtpgate Test Intermediate CA",
        "smtpgate Test Root CA",
      ]);
  });

  it.each<[LeafName, string, RegExp]>([
    ["expired", "certificate-expired", /expired/],
    ["notYetValid", "certificate-not-yet-valid", /valid only from/],
    ["otherCa", "certificate-untrusted", /no trusted issuer/],
    ["selfSigned", "certificate-untrusted", /self-signed and not a trust anchor/],
    ["caAsLeaf", "certificate-usage", /CA certificate, not a client certificate/],
    ["noClientAuth", "certificate-usage", /does not allow client authentication/],
    ["noEku", "certificate-usage", /no extendedKeyUsage/],
    ["noDigitalSignature", "certificate-usage", /lacks digitalSignature/],
    ["unknownCritical", "certificate-critical-extension", /1\.3\.6\.1\.4\.1\.55555\.1/],
    ["notCaIntermediateLeaf", "certificate-untrusted", /is not a CA/],
    ["noKeyCertSignLeaf", "certificate-untrusted", /no keyCertSign/],
    ["pathLenLeaf", "certificate-untrusted", /allows 0 intermediate CA\(s\) below it; the path has 1/],
    ["expiredIntermediateLeaf", "certificate-expired", /expired/],
  ])("refuses %s: %s", async (leaf, reason, detail) => {
    const result = await validate(leaf);
    expect(result).toMatchObject({ ok: false, reason });
    if (!result.ok) expect(result.detail).toMatch(detail);
  });

  it("accepts anyExtendedKeyUsage, and no EKU only where the profile allows it", async () => {
    expect((await validate("anyEku")).ok).toBe(true);
    expect((await validate("noEku", { allowNoExtendedKeyUsage: true })).ok).toBe(true);
  });

  it("does not trust a path that only the presented chain vouches for", async () => {
    // The attacker sends their own root along: it is not an anchor, so it does not count.
    const parsed = parseChain(
      [...pki.chain("otherCa"), Buffer.from(pki.otherRoot.der).toString("base64")],
      DEFAULT_CHAIN_LIMITS,
    );
    if (!parsed.ok) throw new Error(parsed.detail);
    const result = await validatePath(
      parsed.chain.map((item) => item.certificate),
      { anchors: [pki.root.certificate], now: new Date(), allowNoExtendedKeyUsage: false },
    );
    expect(result).toMatchObject({ ok: false, reason: "certificate-untrusted" });
  });

  it("accepts a chain that includes the root itself", async () => {
    const parsed = parseChain(
      [...pki.chain("alice"), Buffer.from(pki.root.der).toString("base64")],
      DEFAULT_CHAIN_LIMITS,
    );
    if (!parsed.ok) throw new Error(parsed.detail);
    expect(
      (
        await validatePath(
          parsed.chain.map((item) => item.certificate),
          { anchors: [pki.root.certificate], now: new Date(), allowNoExtendedKeyUsage: false },
        )
      ).ok,
    ).toBe(true);
  });

  it("refuses a leaf without its intermediate", async () => {
    const parsed = parseChain([pki.chain("alice")[0] as string], DEFAULT_CHAIN_LIMITS);
    if (!parsed.ok) throw new Error(parsed.detail);
    expect(
      await validatePath(
        parsed.chain.map((item) => item.certificate),
        { anchors: [pki.root.certificate], now: new Date(), allowNoExtendedKeyUsage: false },
      ),
    ).toMatchObject({
      ok: false,
      reason: "certificate-untrusted",
    });
  });

  it("builds the path with the profile's intermediates when the client sends only its leaf", async () => {
    const parsed = parseChain([pki.chain("alice")[0] as string], DEFAULT_CHAIN_LIMITS);
    if (!parsed.ok) throw new Error(parsed.detail);
    const leafOnly = parsed.chain.map((item) => item.certificate);
    const options = { anchors: [pki.root.certificate], now: new Date(), allowNoExtendedKeyUsage: false };
    expect((await validatePath(leafOnly, { ...options, intermediates: [pki.intermediate.certificate] })).ok).toBe(true);
    // An intermediate is not an anchor: with only the intermediate configured, nothing is trusted.
    expect(
      await validatePath(leafOnly, { ...options, anchors: [], intermediates: [pki.intermediate.certificate] }),
    ).toMatchObject({ ok: false, reason: "certificate-untrusted" });
  });

  it("judges validity at the given time", async () => {
    const inTwoYears = new Date(Date.now() + 2 * 365 * 86_400_000);
    expect(await validate("alice", { now: inTwoYears })).toMatchObject({ ok: false, reason: "certificate-expired" });
  });
});

describe("parseChain", () => {
  it.each([
    [
      "garbage bytes",
      [Buffer.from("this is not a certificate at all").toString("base64")],
      /not a DER X.509 certificate/,
    ],
    ["truncated DER", [Buffer.from([0x30, 0x82, 0x05, 0x00, 0x30]).toString("base64")], /not a DER X.509 certificate/],
    ["not base64", ["!!!"], /not base64/],
    ["a 1 MB blob", [Buffer.alloc(1024 * 1024, 0x41).toString("base64")], /larger than 16384 bytes/],
    ["a chain of 50", Array.from({ length: 50 }, () => "AAAA"), /chain of 50 certificates; at most 8/],
    ["an empty chain", [], /empty certificate chain/],
  ])("refuses %s with a reason, without throwing", (_, chain, detail) => {
    const result = parseChain(chain, DEFAULT_CHAIN_LIMITS);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.detail).toMatch(detail);
  });
});

describe("certificate memo", () => {
  it("parses a certificate seen before only once, and still judges each decision afresh", async () => {
    const first = parseChain(pki.chain("alice"), DEFAULT_CHAIN_LIMITS);
    const second = parseChain(pki.chain("alice"), DEFAULT_CHAIN_LIMITS);
    if (!first.ok || !second.ok) throw new Error("parse failed");
    expect(second.chain[0]?.certificate).toBe(first.chain[0]?.certificate);
    // The memo keeps signatures, not verdicts: the same objects are refused once their time has passed.
    const certificates = second.chain.map((item) => item.certificate);
    const options = { anchors: [pki.root.certificate], allowNoExtendedKeyUsage: false };
    expect((await validatePath(certificates, { ...options, now: new Date() })).ok).toBe(true);
    expect(
      await validatePath(certificates, { ...options, now: new Date(Date.now() + 2 * 365 * 86_400_000) }),
    ).toMatchObject({ ok: false, reason: "certificate-expired" });
  });
});
