// GET /metrics end to end: who may read it, and what it says after real decisions against real slapds (one of
// which stops, for the failover series) and a CRL server.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConfigInput } from "../../api/config/schema.ts";
import { API_TOKENS_CONFIG, TEST_TOKEN, startTestApi, type TestApi } from "../../dev/api.ts";
import { CAC_SCHEMA, certUsersLdif } from "../../dev/client-pki/directory-entries.ts";
import { generateClientPki, type ClientPki } from "../../dev/client-pki/index.ts";
import { serveCrls, type CrlServer } from "../../dev/crl-server.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";

const { alice, bob } = SEED.users;
const METRICS_TOKEN = "metrics-token-0123456789";

let primary: SlapdInstance;
let secondary: SlapdInstance;
let crlServer: CrlServer;
let pki: ClientPki;
let api: TestApi;

function config(): ConfigInput {
  return {
    directories: {
      corp: {
        hosts: [primary.ldapUrl, secondary.ldapUrl],
        mode: "failover",
        tls: { caFile: primary.pki.caFile },
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
      asyncos: { directory: "corp", filter: "(&(objectClass=posixAccount)(caccn={cn})(cacserial={sn}))" },
    },
    crlSources: { intermediate: { url: `${crlServer.baseUrl}/intermediate.crl` } },
    authProfiles: {
      corp: { type: "ldap", query: "corp", cache: { positiveTtlSeconds: 60, negativeTtlSeconds: 10 } },
      uncached: { type: "ldap", query: "corp" },
      cert: {
        type: "certificate",
        query: "asyncos",
        trustAnchors: { pem: pki.rootPem },
        revocation: { crlSources: ["intermediate"] },
      },
    },
    listeners: {
      submission: { authProfile: "corp" },
      uncached: { authProfile: "uncached" },
      a: { authProfile: "cert" },
    },
    api: { ...API_TOKENS_CONFIG, metricsTokens: [{ env: "METRICS_TOKEN" }] },
  };
}

beforeAll(async () => {
  crlServer = await serveCrls();
  pki = await generateClientPki({ crlBaseUrl: crlServer.baseUrl });
  crlServer.set("/intermediate.crl", pki.crls.intermediateCurrent.der);
  const ldap = { extraSchema: CAC_SCHEMA, extraLdif: certUsersLdif(pki) };
  [primary, secondary] = await Promise.all([startSlapd(ldap), startSlapd(ldap)]);
  api = await startTestApi(config(), { BIND_PW: SEED.servicePassword, METRICS_TOKEN });
});

afterAll(async () => {
  await api?.close();
  await primary?.close();
  await secondary?.close();
  await crlServer?.close();
});

async function scrape(
  server: TestApi = api,
  token: string | null = METRICS_TOKEN,
): Promise<{ status: number; type: string | null; text: string }> {
  const response = await fetch(`${server.url}/metrics`, {
    headers: token === null ? {} : { Authorization: `Bearer ${token}` },
  });
  return { status: response.status, type: response.headers.get("content-type"), text: await response.text() };
}

/** The value of one sample (`name{labels}`, labels as printed), or undefined when the series is absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function tls(chain: string[]): Promise<Record<string, unknown>> {
  const response = await api.post("/v1/decide/tls", {
    listener: "a",
    client: { ip: "192.0.2.7" },
    tls: { version: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256" },
    certificate: { chain },
  });
  return response.body;
}

describe("who may read /metrics", () => {
  it("refuses a scrape without a token or with a wrong one (401, Bearer challenge)", async () => {
    for (const token of [null, "wrong-token-0123456789"]) {
      const response = await fetch(`${api.url}/metrics`, {
        headers: token === null ? {} : { Authorization: `Bearer ${token}` },
      });
      expect(response.status).toBe(401);
      expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect(await response.text()).not.toContain("smtpgate_");
    }
  });

  it("accepts a metrics token and an API token, in the Prometheus text format 0.0.4", async () => {
    for (const token of [METRICS_TOKEN, TEST_TOKEN]) {
      const { status, type, text } = await scrape(api, token);
      expect(status).toBe(200);
      expect(type).toBe("text/plain; version=0.0.4; charset=utf-8");
      expect(text).toContain("# TYPE smtpgate_decisions_total counter\n");
      expect(text).toContain("# TYPE smtpgate_decision_duration_seconds histogram\n");
    }
  });

  it("gives a metrics token nothing else: no decisions, no cache flushes", async () => {
    expect(
      (
        await api.post(
          "/v1/decide/auth",
          {
            listener: "submission",
            client: { ip: "192.0.2.1" },
            mechanism: "PLAIN",
            username: "alice",
            password: alice.password,
          },
          METRICS_TOKEN,
        )
      ).status,
    ).toBe(401);
    expect((await api.post("/v1/cache/flush", {}, METRICS_TOKEN)).status).toBe(401);
  });
});

describe("what /metrics says", () => {
  it("counts decisions by kind, verdict, reason, method and profile, with latency histograms and cache hits", async () => {
    await api.decideAuth({ username: "alice", password: alice.password });
    await api.decideAuth({ username: "alice", password: alice.password }); // a cache hit
    await api.decideAuth({ username: "alice", password: "wrong" });
    await api.decideAuth({ username: "bob", password: bob.password });
    await api.decideAuth({ username: "alice", password: "" });
    expect(await tls(pki.chain("alice"))).toMatchObject({ verdict: "allow" });
    expect(await tls(pki.chain("revoked"))).toMatchObject({ verdict: "deny", reason: "certificate-revoked" });

    const { text } = await scrape();
    const decisions = (labels: string) => sample(text, `smtpgate_decisions_total{${labels}}`);
    expect(decisions('kind="auth",verdict="allow",reason="ok",method="ldap-bind",profile="corp"')).toBe(2);
    expect(decisions('kind="auth",verdict="deny",reason="invalid-credentials",method="ldap-bind",profile="corp"')).toBe(
      1,
    );
    expect(decisions('kind="auth",verdict="deny",reason="allowance-failed",method="ldap-bind",profile="corp"')).toBe(1);
    expect(decisions('kind="auth",verdict="deny",reason="empty-password",method="ldap-bind",profile="corp"')).toBe(1);
    expect(decisions('kind="tls",verdict="allow",reason="ok",method="certificate",profile="cert"')).toBe(1);
    expect(
      decisions('kind="tls",verdict="deny",reason="certificate-revoked",method="certificate",profile="cert"'),
    ).toBe(1);

    // Latency: one histogram per kind and cache outcome; the buckets are cumulative and end with +Inf = count.
    expect(sample(text, 'smtpgate_decision_duration_seconds_count{kind="auth",cache="hit"}')).toBe(1);
    expect(sample(text, 'smtpgate_decision_duration_seconds_count{kind="auth",cache="miss"}')).toBe(3);
    expect(sample(text, 'smtpgate_decision_duration_seconds_count{kind="auth",cache="none"}')).toBe(1); // the empty password
    expect(sample(text, 'smtpgate_decision_duration_seconds_bucket{kind="auth",cache="miss",le="+Inf"}')).toBe(3);
    expect(sample(text, 'smtpgate_decision_duration_seconds_bucket{kind="tls",cache="none",le="10"}')).toBe(2);
    const buckets = text
      .split("\n")
      .filter((line) => line.startsWith('smtpgate_decision_duration_seconds_bucket{kind="auth",cache="miss",'));
    const counts = buckets.map((line) => Number(line.split(" ")[1]));
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(sample(text, 'smtpgate_decision_duration_seconds_sum{kind="auth",cache="miss"}')).toBeGreaterThan(0);

    expect(sample(text, 'smtpgate_cache_hits_total{profile="corp",kind="auth"}')).toBe(1);
    expect(sample(text, 'smtpgate_cache_misses_total{profile="corp",kind="auth"}')).toBe(3);
    expect(sample(text, 'smtpgate_cache_entries{profile="corp",kind="auth"}')).toBe(3);
    expect(sample(text, 'smtpgate_cache_stale_served_total{profile="corp",kind="auth"}')).toBe(0);
    // Profiles without a cache have no cache series.
    expect(text).not.toContain('profile="uncached",kind="auth"');

    expect(sample(text, 'smtpgate_http_requests_total{route="/v1/decide/auth",status="200"}')).toBe(5);
    expect(sample(text, 'smtpgate_http_requests_total{route="/metrics",status="401"}')).toBe(2);
    // Never a user name or a client address in a label.
    expect(text).not.toMatch(/alice|192\.0\.2/);
  });

  it("shows the CRLs' age, time to nextUpdate and refresh failures", async () => {
    let { text } = await scrape();
    const thisUpdate = pki.crls.intermediateCurrent.thisUpdate.getTime();
    const nextUpdate = pki.crls.intermediateCurrent.nextUpdate.getTime();
    expect(sample(text, 'smtpgate_crl_loaded{source="intermediate"}')).toBe(1);
    expect(sample(text, 'smtpgate_crl_age_seconds{source="intermediate"}')).toBeCloseTo(
      (Date.now() - thisUpdate) / 1000,
      -1,
    );
    expect(sample(text, 'smtpgate_crl_next_update_seconds{source="intermediate"}')).toBeCloseTo(
      (nextUpdate - Date.now()) / 1000,
      -1,
    );
    expect(sample(text, 'smtpgate_crl_refresh_failures_total{source="intermediate"}')).toBe(0);

    crlServer.fail("/intermediate.crl", true);
    await api.gate.crls?.refreshAll();
    crlServer.fail("/intermediate.crl", false);
    ({ text } = await scrape());
    expect(sample(text, 'smtpgate_crl_refresh_failures_total{source="intermediate"}')).toBe(1);
    // The CRL held is kept.
    expect(sample(text, 'smtpgate_crl_loaded{source="intermediate"}')).toBe(1);
  });

  it("shows each directory host's health and counts failovers when a host stops", async () => {
    let { text } = await scrape();
    expect(sample(text, `smtpgate_directory_host_up{directory="corp",host="${primary.ldapUrl}"}`)).toBe(1);
    expect(sample(text, `smtpgate_directory_host_up{directory="corp",host="${secondary.ldapUrl}"}`)).toBeUndefined(); // never tried yet
    expect(sample(text, 'smtpgate_directory_failovers_total{directory="corp"}')).toBe(0);
    expect(sample(text, `smtpgate_directory_active_host{directory="corp",host="${primary.ldapUrl}"}`)).toBe(1);

    await primary.stop();
    try {
      // Not cached (another profile): the decision goes to the directory, and on to the second host.
      expect(await api.decideAuth({ listener: "uncached", username: "alice", password: alice.password })).toMatchObject(
        { verdict: "allow" },
      );
      ({ text } = await scrape());
      expect(sample(text, 'smtpgate_directory_failovers_total{directory="corp"}')).toBe(1);
      expect(sample(text, `smtpgate_directory_host_up{directory="corp",host="${primary.ldapUrl}"}`)).toBe(0);
      expect(sample(text, `smtpgate_directory_host_up{directory="corp",host="${secondary.ldapUrl}"}`)).toBe(1);
      expect(sample(text, `smtpgate_directory_active_host{directory="corp",host="${primary.ldapUrl}"}`)).toBe(0);
      expect(sample(text, `smtpgate_directory_active_host{directory="corp",host="${secondary.ldapUrl}"}`)).toBe(1);
      expect(
        sample(text, `smtpgate_directory_operations_total{directory="corp",host="${primary.ldapUrl}",result="failed"}`),
      ).toBeGreaterThanOrEqual(1);
      expect(
        sample(text, `smtpgate_directory_operations_total{directory="corp",host="${secondary.ldapUrl}",result="ok"}`),
      ).toBeGreaterThanOrEqual(3);
    } finally {
      await primary.start();
    }
  });

  it("keeps one registry per app: another API in the same process starts from zero", async () => {
    const other = await startTestApi(config(), { BIND_PW: SEED.servicePassword, METRICS_TOKEN });
    try {
      const { text } = await scrape(other);
      expect(text).toContain("# TYPE smtpgate_decisions_total counter\n");
      expect(text).not.toMatch(/^smtpgate_decisions_total\{/m);
      expect(sample(text, 'smtpgate_directory_failovers_total{directory="corp"}')).toBe(0);
    } finally {
      await other.close();
    }
  });
});
