import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateClientPki, type ClientPki } from "../../dev/client-pki/index.ts";
import { serveCrls, type CrlServer } from "../../dev/crl-server.ts";
import { CrlStore } from "./crl-store.ts";
import { x509 } from "./x509.ts";

let pki: ClientPki;
let server: CrlServer;
let dir: string;

beforeAll(async () => {
  server = await serveCrls();
  pki = await generateClientPki({ crlBaseUrl: server.baseUrl });
  server.set("/intermediate.crl", pki.crls.intermediateCurrent.der);
  server.set("/stale.crl", pki.crls.intermediateStale.der);
  server.set("/wrong-key.crl", pki.crls.intermediateWrongKey.der);
  dir = await mkdtemp(join(tmpdir(), "smtpgate-crl-"));
  await writeFile(join(dir, "intermediate.crl.pem"), pki.crls.intermediateCurrent.pem);
  await writeFile(join(dir, "intermediate.crl"), pki.crls.intermediateCurrent.der);
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const options = { useDistributionPoints: false, staleGraceSeconds: 0 };

function store(sources: { name: string; url?: string; file?: string }[], now?: () => Date) {
  return new CrlStore({
    sources: sources.map((source) => ({ refreshSeconds: 3600, ...source })),
    readFile: (path) => readFile(path),
    ...(now ? { now } : {}),
  });
}

describe("CrlStore", () => {
  it("finds the revoked certificate by issuer and serial, over HTTP", async () => {
    const crls = store([{ name: "int", url: `${server.baseUrl}/intermediate.crl` }]);
    await crls.refreshAll();
    expect(
      await crls.check(pki.leaves.revoked.certificate, pki.intermediate.certificate, { ...options, sources: ["int"] }),
    ).toMatchObject({ status: "revoked" });
    expect(
      await crls.check(pki.leaves.alice.certificate, pki.intermediate.certificate, { ...options, sources: ["int"] }),
    ).toMatchObject({ status: "good" });
  });

  it("says until when a good answer may be relied on: the CRL's nextUpdate plus the profile's grace", async () => {
    const crls = store([{ name: "int", url: `${server.baseUrl}/intermediate.crl` }]);
    await crls.refreshAll();
    const nextUpdate = crls.status()[0]?.crl?.nextUpdate?.getTime() as number;
    expect(
      await crls.check(pki.leaves.alice.certificate, pki.intermediate.certificate, { ...options, sources: ["int"] }),
    ).toEqual({ status: "good", usableUntil: new Date(nextUpdate), source: "int" });
    expect(
      await crls.check(pki.leaves.alice.certificate, pki.intermediate.certificate, {
        ...options,
        sources: ["int"],
        staleGraceSeconds: 60,
      }),
    ).toEqual({
      status: "good",
      usableUntil: new Date(nextUpdate + 60_000),
      source: "int",
    });
  });

  it.each(["intermediate.crl", "intermediate.crl.pem"])("reads a CRL file (%s)", async (file) => {
    const crls = store([{ name: "file", file: join(dir, file) }]);
    await crls.refreshAll();
    expect(
      await crls.check(pki.leaves.revoked.certificate, pki.intermediate.certificate, { ...options, sources: ["file"] }),
    ).toMatchObject({ status: "revoked" });
  });

  it("treats a CRL past its nextUpdate as unknown, unless within the grace period", async () => {
    const crls = store([{ name: "stale", url: `${server.baseUrl}/stale.crl` }]);
    await crls.refreshAll();
    expect(
      await crls.check(pki.leaves.alice.certificate, pki.intermediate.certificate, { ...options, sources: ["stale"] }),
    ).toMatchObject({ status: "unknown", detail: expect.stringMatching(/stale/) });
    expect(
      await crls.check(pki.leaves.revoked.certificate, pki.intermediate.certificate, {
        ...options,
        sources: ["stale"],
        staleGraceSeconds: 86_400,
      }),
    ).toMatchObject({ status: "revoked" });
  });

  it("refuses a CRL whose signature does not verify with the issuer's key", async () => {
    const crls = store([{ name: "forged", url: `${server.baseUrl}/wrong-key.crl` }]);
    await crls.refreshAll();
    // The forged CRL lists "revoked"; it must not be believed either way.
    expect(
      await crls.check(pki.leaves.revoked.certificate, pki.intermediate.certificate, {
        ...options,
        sources: ["forged"],
      }),
    ).toMatchObject({
      status: "unknown",
      detail: expect.stringMatching(/signature does not verify/),
    });
  });

  it("never revokes by serial alone: a CRL from another issuer listing the same serial does not apply", async () => {
    // Signed with the intermediate's own key, so only the issuer name tells it apart.
    const der = Buffer.from(pki.intermediate.keyPem.replace(/-----[^-]+-----|\s/g, ""), "base64");
    const signingKey = await crypto.subtle.importKey("pkcs8", der, { name: "ECDSA", namedCurve: "P-256" }, false, [
      "sign",
    ]);
    const foreign = await x509.X509CrlGenerator.create({
      issuer: pki.otherRoot.certificate.subject,
      thisUpdate: new Date(Date.now() - 60_000),
      nextUpdate: new Date(Date.now() + 86_400_000),
      entries: [
        { serialNumber: pki.leaves.alice.certificate.serialNumber, revocationDate: new Date(Date.now() - 60_000) },
      ],
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
      signingKey,
    });
    server.set("/foreign.crl", new Uint8Array(foreign.rawData));
    const crls = store([{ name: "foreign", url: `${server.baseUrl}/foreign.crl` }]);
    await crls.refreshAll();
    expect(
      await crls.check(pki.leaves.alice.certificate, pki.intermediate.certificate, {
        ...options,
        sources: ["foreign"],
      }),
    ).toMatchObject({ status: "unknown" });
  });

  it("refreshes with conditional requests and keeps the CRL on 304", async () => {
    let now = new Date();
    const crls = store([{ name: "int", url: `${server.baseUrl}/intermediate.crl` }], () => now);
    server.requests.length = 0;
    await crls.refreshAll();
    const version = crls.version;
    now = new Date(now.getTime() + 3_600_000);
    await crls.refreshDue();
    const hits = server.hits("/intermediate.crl");
    expect(hits).toHaveLength(2);
    expect(hits[1]).toMatchObject({ status: 304, ifNoneMatch: expect.stringMatching(/^"/) });
    expect(crls.version).toBe(version);
    expect(
      await crls.check(pki.leaves.revoked.certificate, pki.intermediate.certificate, { ...options, sources: ["int"] }),
    ).toMatchObject({ status: "revoked" });
  });

  it("keeps the last good CRL when a refresh fails, and reports the failure", async () => {
    let now = new Date();
    server.set("/flaky.crl", pki.crls.intermediateCurrent.der);
    const crls = store([{ name: "flaky", url: `${server.baseUrl}/flaky.crl` }], () => now);
    await crls.refreshAll();
    server.fail("/flaky.crl", true);
    now = new Date(now.getTime() + 3_600_000);
    await crls.refreshDue();
    expect(crls.status()[0]).toMatchObject({
      name: "flaky",
      error: expect.stringMatching(/HTTP 500/),
      refreshFailures: 1,
    });
    expect(
      await crls.check(pki.leaves.revoked.certificate, pki.intermediate.certificate, {
        ...options,
        sources: ["flaky"],
      }),
    ).toMatchObject({ status: "revoked" });
  });

  it("reports unknown when a source never loaded", async () => {
    const crls = store([{ name: "missing", url: `${server.baseUrl}/nothing-here.crl` }]);
    await crls.refreshAll();
    expect(
      await crls.check(pki.leaves.alice.certificate, pki.intermediate.certificate, {
        ...options,
        sources: ["missing"],
      }),
    ).toMatchObject({
      status: "unknown",
      detail: expect.stringMatching(/no CRL loaded \(HTTP 404/),
    });
  });

  it("does not download a dead source on every decision: at most once per 30 s until it loads", async () => {
    let now = new Date();
    const crls = store([{ name: "dead", url: `${server.baseUrl}/dead.crl` }], () => now);
    server.requests.length = 0;
    const check = () =>
      crls.check(pki.leaves.alice.certificate, pki.intermediate.certificate, { ...options, sources: ["dead"] });
    await check();
    await check();
    await check();
    expect(server.hits("/dead.crl")).toHaveLength(1);
    now = new Date(now.getTime() + 30_000);
    await check();
    expect(server.hits("/dead.crl")).toHaveLength(2);
  });

  it("follows the certificate's own CRL distribution point when asked", async () => {
    const crls = store([]);
    expect(
      await crls.check(pki.leaves.revoked.certificate, pki.intermediate.certificate, {
        ...options,
        sources: [],
        useDistributionPoints: true,
      }),
    ).toMatchObject({ status: "revoked" });
    expect(
      await crls.check(pki.leaves.alice.certificate, pki.intermediate.certificate, {
        ...options,
        sources: [],
        useDistributionPoints: true,
      }),
    ).toMatchObject({ status: "good" });
  });

  it("refuses garbage as a CRL", async () => {
    server.set("/garbage.crl", new TextEncoder().encode("not a crl"));
    const crls = store([{ name: "garbage", url: `${server.baseUrl}/garbage.crl` }]);
    await crls.refreshAll();
    expect(crls.status()[0]?.error).toMatch(/not a DER or PEM CRL/);
  });
});
