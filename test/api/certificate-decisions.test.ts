// Flows A, B and C end to end at the API: a generated client PKI, CRLs from a local HTTP server and from a file,
// a real slapd with the AsyncOS-style CAC schema, real HTTP.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConfigInput } from "../../api/config/schema.ts";
import { API_TOKENS_CONFIG, startTestApi, type TestApi } from "../../dev/api.ts";
import { CAC_SCHEMA, certUsersLdif } from "../../dev/client-pki/directory-entries.ts";
import { generateClientPki, type ClientPki, type LeafName } from "../../dev/client-pki/index.ts";
import { serveCrls, type CrlServer } from "../../dev/crl-server.ts";
import { freePorts } from "../../dev/ports.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";
import { x509 } from "../../api/pki/x509.ts";

let slapd: SlapdInstance;
let crlServer: CrlServer;
let pki: ClientPki;
let dir: string;
let api: TestApi;

const ASYNCOS = "(&(objectClass=posixAccount)(caccn={cn})(cacserial={sn}))";
const ALICE_CERT_DN = `uid=alice.cert,ou=certs,${SEED.baseDn}`;

function certificateProfile(query: string, extra: Record<string, unknown> = {}) {
  return {
    type: "certificate" as const,
    query,
    trustAnchors: { pem: pki.rootPem },
    revocation: { crlSources: ["intermediate"] },
    ...extra,
  };
}

function config(directoryHosts: string[]): ConfigInput {
  return {
    directories: {
      corp: {
        hosts: directoryHosts,
        tls: { caFile: slapd.pki.caFile },
        bind: { dn: SEED.serviceDn, password: { env: "BIND_PW" } },
        baseDn: SEED.baseDn,
        connectTimeoutMs: 500,
        operationTimeoutMs: 500,
      },
    },
    smtpAuthQueries: {
      corp: { directory: "corp", allowance: { filter: `(&(uid={u})(memberOf=${SEED.smtpUsersGroupDn}))` } },
    },
    certificateQueries: {
      asyncos: { directory: "corp", filter: ASYNCOS },
      mail: { directory: "corp", filter: "(mail={email})" },
      upn: { directory: "corp", filter: "(cacupn={upn})" },
      binary: { directory: "corp", filter: "(caccn={cn})", matchUserCertificate: true },
    },
    crlSources: {
      intermediate: { url: `${crlServer.baseUrl}/intermediate.crl` },
      "stale-file": { file: join(dir, "stale.crl") },
      "wrong-key": { url: `${crlServer.baseUrl}/wrong-key.crl` },
      "root-revokes-intermediate": { url: `${crlServer.baseUrl}/root-revokes-intermediate.crl` },
    },
    authProfiles: {
      corp: { type: "ldap", query: "corp" },
      "cert-only": certificateProfile("asyncos"),
      "cert-or-ldap": certificateProfile("asyncos", { allowAuthFallback: "corp" }),
      "cert-or-ldap-lenient": certificateProfile("asyncos", {
        allowAuthFallback: "corp",
        onInvalidCertificate: "fallback",
      }),
      "by-mail": certificateProfile("mail"),
      "by-upn": certificateProfile("upn"),
      "by-binary": certificateProfile("binary"),
      "stale-deny": certificateProfile("asyncos", { revocation: { crlSources: ["stale-file"] } }),
      "stale-tempfail": certificateProfile("asyncos", {
        revocation: { crlSources: ["stale-file"], whenUnknown: "tempfail" },
      }),
      "stale-grace": certificateProfile("asyncos", {
        revocation: { crlSources: ["stale-file"], staleGraceSeconds: 86_400 },
      }),
      "forged-crl": certificateProfile("asyncos", { revocation: { crlSources: ["wrong-key"] } }),
      "intermediate-revoked": certificateProfile("asyncos", {
        revocation: { crlSources: ["intermediate", "root-revokes-intermediate"] },
      }),
      "no-revocation": { type: "certificate" as const, query: "asyncos", trustAnchors: { pem: pki.rootPem } },
    },
    listeners: {
      a: { authProfile: "cert-only" },
      b: { authProfile: "corp" },
      c: { authProfile: "cert-or-ldap" },
      "c-lenient": { authProfile: "cert-or-ldap-lenient" },
      mail: { authProfile: "by-mail" },
      upn: { authProfile: "by-upn" },
      binary: { authProfile: "by-binary" },
      "stale-deny": { authProfile: "stale-deny" },
      "stale-tempfail": { authProfile: "stale-tempfail" },
      "stale-grace": { authProfile: "stale-grace" },
      "forged-crl": { authProfile: "forged-crl" },
      "no-revocation": { authProfile: "no-revocation" },
      "intermediate-revoked": { authProfile: "intermediate-revoked" },
    },
    api: { ...API_TOKENS_CONFIG, maxBodyBytes: 4 * 1024 * 1024 },
  };
}

beforeAll(async () => {
  crlServer = await serveCrls();
  pki = await generateClientPki({ crlBaseUrl: crlServer.baseUrl });
  crlServer.set("/intermediate.crl", pki.crls.intermediateCurrent.der);
  crlServer.set("/wrong-key.crl", pki.crls.intermediateWrongKey.der);
  crlServer.set("/root-revokes-intermediate.crl", await rootCrlRevoking(pki.intermediate.certificate.serialNumber));
  dir = await mkdtemp(join(tmpdir(), "smtpgate-cert-"));
  await writeFile(join(dir, "stale.crl"), pki.crls.intermediateStale.pem);
  slapd = await startSlapd({ extraSchema: CAC_SCHEMA, extraLdif: certUsersLdif(pki) });
  api = await startTestApi(config([slapd.ldapUrl]), { BIND_PW: SEED.servicePassword });
});

afterAll(async () => {
  await api?.close();
  await slapd?.close();
  await crlServer?.close();
  await rm(dir, { recursive: true, force: true });
});

/** A CRL from the test root (signed with its key) that revokes `serial`. */
async function rootCrlRevoking(serial: string): Promise<Uint8Array> {
  const der = Buffer.from(pki.root.keyPem.replace(/-----[^-]+-----|\s/g, ""), "base64");
  const signingKey = await crypto.subtle.importKey("pkcs8", der, { name: "ECDSA", namedCurve: "P-256" }, false, [
    "sign",
  ]);
  const crl = await x509.X509CrlGenerator.create({
    issuer: pki.root.certificate.subjectName,
    thisUpdate: new Date(Date.now() - 60_000),
    nextUpdate: new Date(Date.now() + 86_400_000),
    entries: [{ serialNumber: serial, revocationDate: new Date(Date.now() - 60_000) }],
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    signingKey,
  });
  return new Uint8Array(crl.rawData);
}

async function tls(listener: string, chain: string[] | null, server: TestApi = api): Promise<Record<string, unknown>> {
  const response = await server.post("/v1/decide/tls", {
    listener,
    session: "s1",
    client: { ip: "192.0.2.7", helo: "laptop.example" },
    tls: { version: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256" },
    certificate: chain === null ? null : { chain },
  });
  if (response.status !== 200)
    throw new Error(`decide/tls answered ${response.status}: ${JSON.stringify(response.body)}`);
  return response.body;
}

async function auth(
  listener: string,
  chain: string[] | null,
  username: string,
  password: string,
): Promise<Record<string, unknown>> {
  const response = await api.post("/v1/decide/auth", {
    listener,
    client: { ip: "192.0.2.7" },
    tls: { version: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256" },
    mechanism: "PLAIN",
    username,
    password,
    certificate: chain === null ? null : { chain },
  });
  if (response.status !== 200)
    throw new Error(`decide/auth answered ${response.status}: ${JSON.stringify(response.body)}`);
  return response.body;
}

const REFUSED = {
  verdict: "deny",
  authenticated: false,
  close: true,
  smtp: { code: 554, enhanced: "5.7.1", text: "Valid client certificate required" },
};

describe("flow A: certificate only (AsyncOS query caccn/cacserial)", () => {
  it("authenticates alice's certificate as the entry's uid", async () => {
    expect(await tls("a", pki.chain("alice"))).toMatchObject({
      verdict: "allow",
      authenticated: true,
      method: "certificate",
      identity: "alice.cert",
      dn: ALICE_CERT_DN,
      reason: "ok",
      close: false,
      profile: "cert-only",
    });
  });

  it("maps a serial with a leading zero byte by its unpadded hex ({sn})", async () => {
    expect(await tls("a", pki.chain("serialLeadingZero"))).toMatchObject({ verdict: "allow", identity: "erin" });
  });

  it("refuses a session without a certificate: 554 5.7.1 and close", async () => {
    expect(await tls("a", null)).toMatchObject({ ...REFUSED, reason: "certificate-missing" });
  });

  it.each<[LeafName, string]>([
    ["expired", "certificate-expired"],
    ["notYetValid", "certificate-not-yet-valid"],
    ["otherCa", "certificate-untrusted"],
    ["selfSigned", "certificate-untrusted"],
    ["revoked", "certificate-revoked"],
    ["caAsLeaf", "certificate-usage"],
    ["noClientAuth", "certificate-usage"],
    ["noDigitalSignature", "certificate-usage"],
    ["noEku", "certificate-usage"],
    ["unknownCritical", "certificate-critical-extension"],
    ["notCaIntermediateLeaf", "certificate-untrusted"],
    ["noKeyCertSignLeaf", "certificate-untrusted"],
    ["pathLenLeaf", "certificate-untrusted"],
    ["expiredIntermediateLeaf", "certificate-expired"],
  ])("refuses %s with %s, 554 and close", async (leaf, reason) => {
    expect(await tls("a", pki.chain(leaf))).toMatchObject({ ...REFUSED, reason });
  });

  it("refuses a valid certificate that maps to no entry, or to two", async () => {
    expect(await tls("a", pki.chain("carol"))).toMatchObject({ ...REFUSED, reason: "certificate-unmapped" });
    expect(await tls("a", pki.chain("bob"))).toMatchObject({ ...REFUSED, reason: "certificate-ambiguous" });
  });

  it.each([
    ["garbage bytes", [Buffer.from("garbage, not DER").toString("base64")]],
    [
      "truncated DER",
      () => [Buffer.from(Buffer.from(pki.chain("alice")[0] as string, "base64").subarray(0, 200)).toString("base64")],
    ],
    ["a 1 MB blob", [Buffer.alloc(1024 * 1024, 7).toString("base64")]],
    ["a chain of 50", () => Array.from({ length: 50 }, () => pki.chain("alice")[0] as string)],
  ])("refuses %s as certificate-malformed, never a 500", async (_, chain) => {
    const presented = typeof chain === "function" ? chain() : chain;
    expect(await tls("a", presented)).toMatchObject({ ...REFUSED, reason: "certificate-malformed" });
  });

  it("does not offer AUTH: an AUTH attempt gets 503 5.5.1", async () => {
    expect(await auth("a", pki.chain("alice"), "alice", SEED.users.alice.password)).toMatchObject({
      verdict: "deny",
      reason: "auth-not-offered",
      smtp: { code: 503, enhanced: "5.5.1" },
    });
  });

  it("logs the decision with the reason and the subject, once", async () => {
    const before = api.logs.length;
    await tls("a", pki.chain("revoked"));
    const lines = api.logs.slice(before);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      msg: "decision",
      kind: "tls",
      reason: "certificate-revoked",
      verdict: "deny",
      certificates: 2,
      listener: "a",
      session: "s1",
    });
    expect(String(lines[0]?.detail)).toMatch(/revoked/);
  });
});

describe("certificate query tokens against the directory", () => {
  it("maps by SAN email ({email}) to the seed entry", async () => {
    expect(await tls("mail", pki.chain("alice"))).toMatchObject({
      verdict: "allow",
      identity: "alice",
      dn: SEED.users.alice.dn,
    });
  });

  it("maps by the subject emailAddress when there is no SAN", async () => {
    expect(await tls("mail", pki.chain("subjectEmailOnly"))).toMatchObject({ verdict: "allow", identity: "dave" });
  });

  it("maps by UPN ({upn}), and fails closed for a certificate without one", async () => {
    expect(await tls("upn", pki.chain("alice"))).toMatchObject({ verdict: "allow", identity: "alice.cert" });
    expect(await tls("upn", pki.chain("bob"))).toMatchObject({ ...REFUSED, reason: "certificate-unmapped" });
  });

  it("with matchUserCertificate, requires the entry's userCertificate;binary to be the presented certificate", async () => {
    expect(await tls("binary", pki.chain("alice"))).toMatchObject({ verdict: "allow", identity: "alice.cert" });
    // Same CN and a valid chain, but not the certificate stored in the entry.
    expect(await tls("binary", pki.chain("anyEku"))).toMatchObject({ ...REFUSED, reason: "certificate-unmapped" });
  });
});

describe("revocation sources", () => {
  it("denies when the only CRL is stale (default whenUnknown: deny)", async () => {
    expect(await tls("stale-deny", pki.chain("alice"))).toMatchObject({
      ...REFUSED,
      reason: "certificate-revocation-unknown",
    });
  });

  it("answers 454 and closes when the profile says tempfail", async () => {
    expect(await tls("stale-tempfail", pki.chain("alice"))).toMatchObject({
      verdict: "tempfail",
      reason: "certificate-revocation-unknown",
      smtp: { code: 454, enhanced: "4.7.0" },
      close: true,
    });
  });

  it("uses a stale CRL within the grace period (and still finds the revoked one)", async () => {
    expect(await tls("stale-grace", pki.chain("alice"))).toMatchObject({ verdict: "allow" });
    expect(await tls("stale-grace", pki.chain("revoked"))).toMatchObject({ reason: "certificate-revoked" });
  });

  it("does not believe a CRL signed by the wrong key", async () => {
    expect(await tls("forged-crl", pki.chain("alice"))).toMatchObject({
      ...REFUSED,
      reason: "certificate-revocation-unknown",
    });
  });

  it("skips revocation only where the profile has none", async () => {
    expect(await tls("no-revocation", pki.chain("revoked"))).toMatchObject({ verdict: "allow", identity: "revoked" });
  });

  it("shows the CRL sources in /readyz", async () => {
    const body = (await (await fetch(`${api.url}/readyz`)).json()) as {
      crlSources: Record<string, { ready: boolean }>;
    };
    expect(body.crlSources.intermediate?.ready).toBe(true);
  });
});

describe("revoked intermediate CA", () => {
  it("refuses a valid leaf whose intermediate the root's CRL revokes", async () => {
    const verdict = await tls("intermediate-revoked", pki.chain("alice"));
    expect(verdict).toMatchObject({ ...REFUSED, reason: "certificate-revoked" });
    const line = api.logs.findLast((record) => record.msg === "decision");
    expect(String(line?.detail)).toMatch(/^intermediate CA .*smtpgate Test Intermediate CA/);
  });
});

describe("flow B on the same API", () => {
  it("authenticates by LDAP bind on a password listener, and a TLS decision there just continues", async () => {
    expect(await auth("b", null, "alice", SEED.users.alice.password)).toMatchObject({
      verdict: "allow",
      method: "ldap-bind",
      identity: "alice",
    });
    expect(await tls("b", pki.chain("alice"))).toMatchObject({
      verdict: "continue",
      reason: "certificate-not-used",
      smtp: null,
    });
  });
});

describe("flow C: certificate or LDAP", () => {
  it("authenticates a valid mapped certificate at STARTTLS", async () => {
    expect(await tls("c", pki.chain("alice"))).toMatchObject({
      verdict: "allow",
      identity: "alice.cert",
      method: "certificate",
    });
  });

  it("continues without a certificate, and AUTH then goes to the LDAP profile", async () => {
    expect(await tls("c", null)).toMatchObject({
      verdict: "continue",
      reason: "certificate-missing",
      smtp: null,
      close: false,
    });
    expect(await auth("c", null, "alice", SEED.users.alice.password)).toMatchObject({
      verdict: "allow",
      method: "ldap-bind",
      profile: "corp",
      identity: "alice",
    });
    expect(await auth("c", null, "bob", SEED.users.bob.password)).toMatchObject({
      verdict: "deny",
      reason: "allowance-failed",
    });
    expect(await auth("c", null, "alice", "")).toMatchObject({ verdict: "deny", reason: "empty-password" });
  });

  it("continues for a valid certificate that maps to no entry (allowAuthFallback)", async () => {
    expect(await tls("c", pki.chain("carol"))).toMatchObject({ verdict: "continue", reason: "certificate-unmapped" });
    expect(await auth("c", pki.chain("carol"), "alice", SEED.users.alice.password)).toMatchObject({
      verdict: "allow",
      method: "ldap-bind",
    });
  });

  it("rejects an invalid certificate by default (onInvalidCertificate: reject), at STARTTLS and at AUTH", async () => {
    expect(await tls("c", pki.chain("expired"))).toMatchObject({ ...REFUSED, reason: "certificate-expired" });
    expect(await auth("c", pki.chain("expired"), "alice", SEED.users.alice.password)).toMatchObject({
      ...REFUSED,
      reason: "certificate-expired",
    });
  });

  it("falls back to AUTH for an invalid certificate when the profile says fallback", async () => {
    expect(await tls("c-lenient", pki.chain("revoked"))).toMatchObject({
      verdict: "continue",
      reason: "certificate-revoked",
    });
    expect(await auth("c-lenient", pki.chain("revoked"), "alice", SEED.users.alice.password)).toMatchObject({
      verdict: "allow",
      method: "ldap-bind",
    });
  });

  it("refuses an AUTH call without the certificate field (400): absent must not read as 'no certificate'", async () => {
    const response = await api.post("/v1/decide/auth", {
      listener: "c",
      client: { ip: "192.0.2.7" },
      mechanism: "PLAIN",
      username: "alice",
      password: SEED.users.alice.password,
    });
    expect(response.status).toBe(400);
    expect((response.body.errors as { field: string }[])[0]?.field).toBe("certificate");
  });

  it("answers 503 5.5.1 to AUTH after a certificate already authenticated the session", async () => {
    expect(await auth("c", pki.chain("alice"), "alice", SEED.users.alice.password)).toMatchObject({
      verdict: "deny",
      reason: "already-authenticated",
      smtp: { code: 503, enhanced: "5.5.1" },
    });
  });
});

describe("directory unavailable", () => {
  it("is a temporary failure for a valid certificate, never an accept", async () => {
    const [port] = await freePorts(1);
    const down = await startTestApi(config([`ldap://127.0.0.1:${port}`]), { BIND_PW: SEED.servicePassword });
    try {
      expect(await tls("a", pki.chain("alice"), down)).toMatchObject({
        verdict: "tempfail",
        reason: "directory-unavailable",
        smtp: { code: 454, enhanced: "4.7.0" },
        close: true,
      });
      // Revocation and path checks run first: an invalid certificate is still refused as such.
      expect(await tls("a", pki.chain("revoked"), down)).toMatchObject({ ...REFUSED, reason: "certificate-revoked" });
    } finally {
      await down.close();
    }
  });
});

describe("malformed /v1/decide/tls calls", () => {
  it.each([
    [
      "no certificate field",
      { listener: "a", client: { ip: "192.0.2.7" }, tls: { version: "TLSv1.3", cipher: "x" } },
      "certificate",
    ],
    [
      "a chain that is not an array",
      {
        listener: "a",
        client: { ip: "192.0.2.7" },
        tls: { version: "TLSv1.3", cipher: "x" },
        certificate: { chain: "abc" },
      },
      "certificate.chain",
    ],
    ["no tls facts", { listener: "a", client: { ip: "192.0.2.7" }, certificate: null }, "tls"],
  ])("%s → 400 naming the field", async (_, body, field) => {
    const response = await api.post("/v1/decide/tls", body);
    expect(response.status).toBe(400);
    expect((response.body.errors as { field: string }[]).map((error) => error.field)).toContain(field);
  });

  it("refuses a call without a token", async () => {
    expect((await api.post("/v1/decide/tls", {}, null)).status).toBe(401);
  });
});
