// The decision cache end to end: a real slapd, real HTTP, a CRL server. What a cached answer may and may not
// stand for (another password, another user with the same password), certificates and new CRLs, the directory
// going down with and without serve-stale, and the stats and flush endpoints.
import { setTimeout as delay } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConfigInput } from "../../api/config/schema.ts";
import { x509 } from "../../api/pki/x509.ts";
import { API_TOKENS_CONFIG, TEST_TOKEN, startTestApi, type TestApi } from "../../dev/api.ts";
import { CAC_SCHEMA, certUsersLdif } from "../../dev/client-pki/directory-entries.ts";
import { generateClientPki, type ClientPki } from "../../dev/client-pki/index.ts";
import { serveCrls, type CrlServer } from "../../dev/crl-server.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";

const { alice, bob } = SEED.users;
const METRICS_TOKEN = "metrics-token-0123456789";

/** pat and sam share a password; only pat is in cn=twins. Plain userPassword values: slapd binds against them. */
const TWINS_PASSWORD = "the-same-password";
const TWINS_GROUP = `cn=twins,ou=groups,${SEED.baseDn}`;
const TWINS_LDIF = [
  ...["pat", "sam"].map((uid) =>
    [
      `dn: uid=${uid},ou=people,${SEED.baseDn}`,
      "objectClass: inetOrgPerson",
      `uid: ${uid}`,
      `cn: ${uid}`,
      `sn: ${uid}`,
      `userPassword: ${TWINS_PASSWORD}`,
    ].join("\n"),
  ),
  [`dn: ${TWINS_GROUP}`, "objectClass: groupOfNames", "cn: twins", `member: uid=pat,ou=people,${SEED.baseDn}`].join(
    "\n",
  ),
].join("\n\n");

const ON = { positiveTtlSeconds: 300, negativeTtlSeconds: 60 };

function directoryConfig(slapd: SlapdInstance) {
  return {
    hosts: [slapd.ldapUrl],
    tls: { caFile: slapd.pki.caFile },
    bind: { dn: SEED.serviceDn, password: { env: "BIND_PW" } },
    baseDn: SEED.baseDn,
    connectTimeoutMs: 500,
    operationTimeoutMs: 500,
  };
}

async function get(
  api: TestApi,
  path: string,
  token: string | null = TEST_TOKEN,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${api.url}${path}`, {
    headers: token === null ? {} : { Authorization: `Bearer ${token}` },
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** The body minus what differs between any two answers (the decision id). */
function sameVerdict(body: Record<string, unknown>): Record<string, unknown> {
  const { decisionId: _, ...rest } = body;
  return rest;
}

function lastDecisionLog(api: TestApi): Record<string, unknown> | undefined {
  return api.logs.findLast((record) => record.msg === "decision");
}

/** An empty CRL from the intermediate: the "revoked" leaf is good under it. */
async function emptyIntermediateCrl(pki: ClientPki): Promise<Uint8Array> {
  const der = Buffer.from(pki.intermediate.keyPem.replace(/-----[^-]+-----|\s/g, ""), "base64");
  const signingKey = await crypto.subtle.importKey("pkcs8", der, { name: "ECDSA", namedCurve: "P-256" }, false, [
    "sign",
  ]);
  const crl = await x509.X509CrlGenerator.create({
    issuer: pki.intermediate.certificate.subject,
    thisUpdate: new Date(Date.now() - 60_000),
    nextUpdate: new Date(Date.now() + 86_400_000),
    entries: [],
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    signingKey,
  });
  return new Uint8Array(crl.rawData);
}

describe("with the directory up", () => {
  let slapd: SlapdInstance;
  let crlServer: CrlServer;
  let pki: ClientPki;
  let api: TestApi;

  beforeAll(async () => {
    crlServer = await serveCrls();
    pki = await generateClientPki({ crlBaseUrl: crlServer.baseUrl });
    crlServer.set("/intermediate.crl", await emptyIntermediateCrl(pki));
    slapd = await startSlapd({ extraSchema: CAC_SCHEMA, extraLdif: `${certUsersLdif(pki)}\n${TWINS_LDIF}` });
    const config: ConfigInput = {
      directories: { corp: directoryConfig(slapd) },
      smtpAuthQueries: {
        corp: { directory: "corp", allowance: { filter: `(&(uid={u})(memberOf=${SEED.smtpUsersGroupDn}))` } },
        twins: { directory: "corp", allowance: { filter: `(&(uid={u})(memberOf=${TWINS_GROUP}))` } },
      },
      certificateQueries: {
        asyncos: { directory: "corp", filter: "(&(objectClass=posixAccount)(caccn={cn})(cacserial={sn}))" },
      },
      crlSources: { intermediate: { url: `${crlServer.baseUrl}/intermediate.crl` } },
      authProfiles: {
        cached: { type: "ldap", query: "corp", cache: ON },
        twins: { type: "ldap", query: "twins", cache: ON },
        uncached: { type: "ldap", query: "corp" },
        cert: {
          type: "certificate",
          query: "asyncos",
          trustAnchors: { pem: pki.rootPem },
          revocation: { crlSources: ["intermediate"] },
          cache: ON,
        },
      },
      listeners: {
        submission: { authProfile: "cached" },
        twins: { authProfile: "twins" },
        uncached: { authProfile: "uncached" },
        cert: { authProfile: "cert" },
      },
      api: { ...API_TOKENS_CONFIG, metricsTokens: [{ env: "METRICS_TOKEN" }] },
    };
    api = await startTestApi(config, { BIND_PW: SEED.servicePassword, METRICS_TOKEN });
  });

  afterAll(async () => {
    await api?.close();
    await slapd?.close();
    await crlServer?.close();
  });

  it("answers a repeated decision from the cache: the same verdict, logged as a hit", async () => {
    const first = await api.decideAuth({ username: "alice", password: alice.password });
    expect(first).toMatchObject({ verdict: "allow", identity: "alice", profile: "cached" });
    expect(lastDecisionLog(api)).toMatchObject({ cache: "miss", verdict: "allow" });
    const second = await api.decideAuth({ username: "alice", password: alice.password });
    expect(sameVerdict(second)).toEqual(sameVerdict(first));
    expect(second.decisionId).not.toBe(first.decisionId);
    expect(lastDecisionLog(api)).toMatchObject({ cache: "hit", verdict: "allow", identity: "alice" });
  });

  it("never serves alice's cached allow for another password", async () => {
    await api.decideAuth({ username: "alice", password: alice.password });
    expect(await api.decideAuth({ username: "alice", password: "not-alice-password" })).toMatchObject({
      verdict: "deny",
      reason: "invalid-credentials",
    });
    expect(lastDecisionLog(api)).toMatchObject({ cache: "miss" });
    expect(await api.decideAuth({ username: "alice", password: bob.password })).toMatchObject({
      verdict: "deny",
      reason: "invalid-credentials",
    });
  });

  it("never answers sam with pat's cached allow, though they have the same password", async () => {
    expect(await api.decideAuth({ listener: "twins", username: "pat", password: TWINS_PASSWORD })).toMatchObject({
      verdict: "allow",
      identity: "pat",
      dn: `uid=pat,ou=people,${SEED.baseDn}`,
    });
    // sam's password is right (the bind succeeds) but he is not in cn=twins.
    expect(await api.decideAuth({ listener: "twins", username: "sam", password: TWINS_PASSWORD })).toMatchObject({
      verdict: "deny",
      reason: "allowance-failed",
      identity: null,
      dn: `uid=sam,ou=people,${SEED.baseDn}`,
    });
    expect(lastDecisionLog(api)).toMatchObject({ cache: "miss" });
    // Now both are cached, each answering only for itself.
    expect(await api.decideAuth({ listener: "twins", username: "pat", password: TWINS_PASSWORD })).toMatchObject({
      verdict: "allow",
      identity: "pat",
    });
    expect(lastDecisionLog(api)).toMatchObject({ cache: "hit", identity: "pat" });
    expect(await api.decideAuth({ listener: "twins", username: "sam", password: TWINS_PASSWORD })).toMatchObject({
      verdict: "deny",
      reason: "allowance-failed",
      identity: null,
    });
    expect(lastDecisionLog(api)).toMatchObject({ cache: "hit", user: "sam" });
  });

  it("caches a deny (negative TTL), but not what is refused without the directory", async () => {
    await api.decideAuth({ username: "bob", password: bob.password });
    expect(await api.decideAuth({ username: "bob", password: bob.password })).toMatchObject({
      verdict: "deny",
      reason: "allowance-failed",
    });
    expect(lastDecisionLog(api)).toMatchObject({ cache: "hit" });
    expect(await api.decideAuth({ username: "alice", password: "" })).toMatchObject({
      verdict: "deny",
      reason: "empty-password",
    });
    // (undefined: the JSON log line has no cache field at all)
    expect(lastDecisionLog(api)?.cache).toBeUndefined();
  });

  it("asks the directory every time for a profile without a cache (the default)", async () => {
    await api.decideAuth({ listener: "uncached", username: "alice", password: alice.password });
    await api.decideAuth({ listener: "uncached", username: "alice", password: alice.password });
    expect(lastDecisionLog(api)?.cache).toBeUndefined();
  });

  it("starts afresh for certificates when a new CRL is loaded: a revocation counts at once", async () => {
    const tls = async () => {
      const response = await api.post("/v1/decide/tls", {
        listener: "cert",
        client: { ip: "192.0.2.7" },
        tls: { version: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256" },
        certificate: { chain: pki.chain("revoked") },
      });
      return response.body;
    };
    // Under the empty CRL the certificate is good, and its allow is cached.
    expect(await tls()).toMatchObject({ verdict: "allow", identity: "revoked", method: "certificate" });
    expect(await tls()).toMatchObject({ verdict: "allow", identity: "revoked" });
    expect(lastDecisionLog(api)).toMatchObject({ cache: "hit" });
    // The CA publishes a CRL that lists it; once the API has loaded it, the cached allow is worth nothing.
    crlServer.set("/intermediate.crl", pki.crls.intermediateCurrent.der);
    await api.gate.crls?.refreshAll();
    expect(await tls()).toMatchObject({ verdict: "deny", reason: "certificate-revoked", close: true });
    expect(lastDecisionLog(api)).toMatchObject({ cache: "miss" });
    expect(await tls()).toMatchObject({ verdict: "deny", reason: "certificate-revoked" });
    expect(lastDecisionLog(api)).toMatchObject({ cache: "hit" });
  });

  it("reports each profile's cache on GET /v1/cache", async () => {
    const { status, body } = await get(api, "/v1/cache");
    expect(status).toBe(200);
    const profiles = body.profiles as Record<string, Record<string, unknown>>;
    expect(profiles.cached).toMatchObject({
      kind: "auth",
      enabled: true,
      policy: { positiveTtlSeconds: 300, negativeTtlSeconds: 60, serveStaleSeconds: 0, maxEntries: 10_000 },
    });
    expect(profiles.cached?.hits).toBeGreaterThanOrEqual(2);
    expect(profiles.cached?.entries).toBeGreaterThanOrEqual(3);
    expect(profiles.cert).toMatchObject({ kind: "certificate", enabled: true });
    expect(profiles.uncached).toMatchObject({ kind: "auth", enabled: false, entries: 0 });
    expect((await get(api, "/v1/cache", null)).status).toBe(401);
  });

  describe("POST /v1/cache/flush", () => {
    it("needs an API token: none, a wrong one or a metrics token is 401", async () => {
      for (const token of [null, "wrong-token-0123456789", METRICS_TOKEN]) {
        const response = await api.post("/v1/cache/flush", {}, token);
        expect(response.status).toBe(401);
        expect(response.body).not.toHaveProperty("flushed");
      }
    });

    it("empties one profile's cache: the next decision asks the directory", async () => {
      await api.decideAuth({ username: "alice", password: alice.password });
      const response = await api.post("/v1/cache/flush", { profile: "cached" });
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ profile: "cached" });
      expect(response.body.flushed).toBeGreaterThanOrEqual(1);
      expect(api.logs.findLast((record) => record.msg === "decision cache flushed")).toMatchObject({
        profile: "cached",
      });
      await api.decideAuth({ username: "alice", password: alice.password });
      expect(lastDecisionLog(api)).toMatchObject({ cache: "miss" });
      // Other profiles keep theirs.
      await api.decideAuth({ listener: "twins", username: "pat", password: TWINS_PASSWORD });
      expect(lastDecisionLog(api)).toMatchObject({ cache: "hit" });
    });

    it("empties every cache without a body", async () => {
      const response = await fetch(`${api.url}/v1/cache/flush`, {
        method: "POST",
        headers: { Authorization: `Bearer ${TEST_TOKEN}` },
      });
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ profile: null, flushed: expect.any(Number) });
      const profiles = (await get(api, "/v1/cache")).body.profiles as Record<string, { entries: number }>;
      expect(Object.values(profiles).every((profile) => profile.entries === 0)).toBe(true);
    });

    it("names the field of a bad call: an unknown profile, an unknown key", async () => {
      const unknown = await api.post("/v1/cache/flush", { profile: "nope" });
      expect(unknown.status).toBe(400);
      expect(unknown.body).toMatchObject({ errors: [{ field: "profile", message: 'no auth profile named "nope"' }] });
      const extra = await api.post("/v1/cache/flush", { profiles: ["cached"] });
      expect(extra.status).toBe(400);
    });
  });

  describe("GET /v1/ping", () => {
    it("answers {ok: true} to an API token, 401 otherwise", async () => {
      expect(await get(api, "/v1/ping")).toEqual({ status: 200, body: { ok: true } });
      expect((await get(api, "/v1/ping", null)).status).toBe(401);
      expect((await get(api, "/v1/ping", METRICS_TOKEN)).status).toBe(401);
    });
  });
});

describe("with the directory going down", () => {
  let slapd: SlapdInstance;
  let api: TestApi;

  beforeAll(async () => {
    slapd = await startSlapd();
    api = await startTestApi(
      {
        directories: { corp: directoryConfig(slapd) },
        smtpAuthQueries: {
          corp: { directory: "corp", allowance: { filter: `(&(uid={u})(memberOf=${SEED.smtpUsersGroupDn}))` } },
        },
        authProfiles: {
          // Only outages are answered from this cache: every decision asks the directory while it answers.
          "stale-on": { type: "ldap", query: "corp", cache: { serveStaleSeconds: 3600 } },
          "stale-off": { type: "ldap", query: "corp", cache: { positiveTtlSeconds: 1, negativeTtlSeconds: 60 } },
        },
        listeners: { submission: { authProfile: "stale-on" }, "stale-off": { authProfile: "stale-off" } },
        api: API_TOKENS_CONFIG,
      },
      { BIND_PW: SEED.servicePassword },
    );
    // What each test needs cached, while the directory still answers.
    expect(await api.decideAuth({ username: "alice", password: alice.password })).toMatchObject({ verdict: "allow" });
    expect(await api.decideAuth({ listener: "stale-off", username: "alice", password: alice.password })).toMatchObject({
      verdict: "allow",
    });
    expect(await api.decideAuth({ listener: "stale-off", username: "alice", password: "wrong" })).toMatchObject({
      verdict: "deny",
      reason: "invalid-credentials",
    });
    // Past the 1 s positive TTL of stale-off: the wait is the behaviour under test (an entry that has expired).
    await delay(1_100);
    await slapd.stop();
  });

  afterAll(async () => {
    await api?.close();
    await slapd?.close();
  });

  it("with serveStaleSeconds, answers alice with her recent allow: same verdict, marked stale in the log", async () => {
    expect(await api.decideAuth({ username: "alice", password: alice.password })).toMatchObject({
      verdict: "allow",
      authenticated: true,
      identity: "alice",
      reason: "ok",
      smtp: { code: 235, enhanced: "2.7.0" },
    });
    const line = lastDecisionLog(api);
    expect(line).toMatchObject({ cache: "stale", verdict: "allow" });
    expect(String(line?.detail)).toMatch(
      /directory unavailable: answered with the allow cached \d+ s ago \(serveStaleSeconds 3600\); directory corp: .*ECONNREFUSED/,
    );
    const profiles = (await get(api, "/v1/cache")).body.profiles as Record<string, { staleServed: number }>;
    expect(profiles["stale-on"]?.staleServed).toBe(1);
  });

  it("serves nothing stale for another password or another user: 454", async () => {
    const tempfail = { verdict: "tempfail", reason: "directory-unavailable", smtp: { code: 454, enhanced: "4.7.0" } };
    expect(await api.decideAuth({ username: "alice", password: "guess" })).toMatchObject(tempfail);
    expect(await api.decideAuth({ username: "bob", password: alice.password })).toMatchObject(tempfail);
  });

  it("without serveStaleSeconds, an allow past its TTL is not given: 454", async () => {
    expect(await api.decideAuth({ listener: "stale-off", username: "alice", password: alice.password })).toMatchObject({
      verdict: "tempfail",
      reason: "directory-unavailable",
    });
    expect(lastDecisionLog(api)).toMatchObject({ cache: "miss" });
  });

  it("keeps answering a cached deny within its TTL", async () => {
    expect(await api.decideAuth({ listener: "stale-off", username: "alice", password: "wrong" })).toMatchObject({
      verdict: "deny",
      reason: "invalid-credentials",
    });
    expect(lastDecisionLog(api)).toMatchObject({ cache: "hit" });
  });
});
