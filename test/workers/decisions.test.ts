// The decision API inside workerd (the Worker as deployed: wrangler.toml's entry, compatibility date and flags),
// against a real slapd and a CRL server on loopback: the same verdicts as the Node runtime (test/api/).
import { SELF } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import { TEST_TOKEN } from "./fixture.ts";

const fixture = inject("workers");
const BASE = "https://smtpgate.test";

const ALLOWED = {
  verdict: "allow",
  authenticated: true,
  temporary: false,
  reason: "ok",
  smtp: { code: 235, enhanced: "2.7.0", text: "Authentication succeeded" },
  close: false,
};
const INVALID = {
  verdict: "deny",
  authenticated: false,
  smtp: { code: 535, enhanced: "5.7.8", text: "Authentication credentials invalid" },
};
const TEMPFAIL = {
  verdict: "tempfail",
  authenticated: false,
  reason: "directory-unavailable",
  smtp: { code: 454, enhanced: "4.7.0", text: "Temporary authentication failure" },
};
const REFUSED = {
  verdict: "deny",
  authenticated: false,
  close: true,
  smtp: { code: 554, enhanced: "5.7.1", text: "Valid client certificate required" },
};

async function post(
  path: string,
  body: unknown,
  token: string | null = TEST_TOKEN,
): Promise<{ status: number; body: Record<string, unknown>; type: string | null }> {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  const response = await SELF.fetch(`${BASE}${path}`, {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return {
    status: response.status,
    body: (await response.json()) as Record<string, unknown>,
    type: response.headers.get("Content-Type"),
  };
}

async function auth(
  listener: string,
  username: string,
  password: string,
  chain: string[] | null = null,
): Promise<Record<string, unknown>> {
  const response = await post("/v1/decide/auth", {
    listener,
    session: "w1",
    client: { ip: "192.0.2.25", helo: "client.example" },
    tls: { version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384" },
    mechanism: "PLAIN",
    username,
    password,
    certificate: chain === null ? null : { chain },
  });
  if (response.status !== 200)
    throw new Error(`decide/auth answered ${response.status}: ${JSON.stringify(response.body)}`);
  return response.body;
}

async function tls(listener: string, chain: string[] | null): Promise<Record<string, unknown>> {
  const response = await post("/v1/decide/tls", {
    listener,
    session: "w1",
    client: { ip: "192.0.2.7", helo: "laptop.example" },
    tls: { version: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256" },
    certificate: chain === null ? null : { chain },
  });
  if (response.status !== 200)
    throw new Error(`decide/tls answered ${response.status}: ${JSON.stringify(response.body)}`);
  return response.body;
}

describe("flow B: LDAP SMTP AUTH in workerd", () => {
  it("allows alice: bind succeeds and she is in smtp-users", async () => {
    expect(await auth("submission", "alice", "alice-password")).toMatchObject({
      ...ALLOWED,
      method: "ldap-bind",
      identity: "alice",
      dn: `uid=alice,ou=people,${fixture.baseDn}`,
      profile: "corp",
    });
  });

  it("names the entry's uid, whatever the case typed, with the entry's addresses", async () => {
    expect(await auth("submission", "ALICE", "alice-password")).toMatchObject({
      ...ALLOWED,
      identity: "alice",
      addresses: ["alice@example.com"],
    });
  });

  it("denies bob: his password is right but the allowance query does not find him", async () => {
    expect(await auth("submission", "bob", "bob-password")).toMatchObject({
      ...INVALID,
      reason: "allowance-failed",
      identity: null,
    });
  });

  it("allows bob temporarily where the listener says allow-temporarily", async () => {
    expect(await auth("lenient", "bob", "bob-password")).toMatchObject({
      verdict: "allow",
      temporary: true,
      identity: "bob",
    });
  });

  it("denies a wrong password and an unknown user with the same SMTP reply", async () => {
    expect(await auth("submission", "alice", "wrong-password")).toMatchObject({
      ...INVALID,
      reason: "invalid-credentials",
    });
    expect(await auth("submission", "nobody", "whatever")).toMatchObject({ ...INVALID, reason: "no-such-user" });
  });

  it("denies an empty password without asking the directory (unauthenticated bind)", async () => {
    expect(await auth("submission", "alice", "")).toMatchObject({ ...INVALID, reason: "empty-password" });
    // The directory that is down proves it: asking it would have been a tempfail.
    expect(await auth("down", "alice", "")).toMatchObject({ ...INVALID, reason: "empty-password" });
  });

  it("escapes an LDAP filter injection: it matches no user", async () => {
    expect(await auth("submission", "*)(uid=*))(|(uid=*", "alice-password")).toMatchObject({
      ...INVALID,
      reason: "no-such-user",
    });
    expect(await auth("submission", "*", "alice-password")).toMatchObject({ ...INVALID, reason: "no-such-user" });
  });

  it("answers 454 when the directory is down, never an accept", async () => {
    expect(await auth("down", "alice", "alice-password")).toMatchObject(TEMPFAIL);
  });

  it("fails over to the next host when the first refuses the connection", async () => {
    expect(await auth("failover", "alice", "alice-password")).toMatchObject({ ...ALLOWED, identity: "alice" });
  });

  it("works over LDAPS, the transport a deployed Worker uses", async () => {
    expect(await auth("secure", "alice", "alice-password")).toMatchObject({ ...ALLOWED, identity: "alice" });
  });

  it("refuses an LDAPS directory whose certificate workerd does not trust (454, nothing sent in clear)", async () => {
    expect(await auth("untrusted", "alice", "alice-password")).toMatchObject(TEMPFAIL);
  });
});

describe("flow A: certificate only, in workerd", () => {
  it("authenticates alice's certificate (path, CRL over fetch, certificate query)", async () => {
    expect(await tls("a", fixture.chains.alice)).toMatchObject({
      verdict: "allow",
      authenticated: true,
      method: "certificate",
      identity: "alice.cert",
      close: false,
      smtp: { code: 235, enhanced: "2.7.0" },
    });
  });

  it.each([
    ["expired", "certificate-expired"],
    ["revoked", "certificate-revoked"],
    ["otherCa", "certificate-untrusted"],
  ] as const)("refuses the %s certificate with 554 and close (%s)", async (leaf, reason) => {
    expect(await tls("a", fixture.chains[leaf])).toMatchObject({ ...REFUSED, reason });
  });

  it("refuses a missing certificate where one is required", async () => {
    expect(await tls("a", null)).toMatchObject({ ...REFUSED, reason: "certificate-missing" });
  });

  it("does not offer AUTH on a certificate-only listener (503 5.5.1)", async () => {
    expect(await auth("a", "alice", "alice-password")).toMatchObject({
      verdict: "deny",
      reason: "auth-not-offered",
      smtp: { code: 503, enhanced: "5.5.1" },
    });
  });

  it("answers 454 for a valid certificate when the directory is down", async () => {
    expect(await tls("a-down", fixture.chains.alice)).toMatchObject({
      verdict: "tempfail",
      reason: "directory-unavailable",
      smtp: { code: 454, enhanced: "4.7.0" },
    });
  });
});

describe("flow C: certificate or LDAP, in workerd", () => {
  it("authenticates a valid mapped certificate at STARTTLS", async () => {
    expect(await tls("c", fixture.chains.alice)).toMatchObject({
      verdict: "allow",
      identity: "alice.cert",
      method: "certificate",
    });
  });

  it("continues without a certificate, and AUTH falls back to the LDAP profile", async () => {
    expect(await tls("c", null)).toMatchObject({
      verdict: "continue",
      reason: "certificate-missing",
      smtp: null,
      close: false,
    });
    expect(await auth("c", "alice", "alice-password")).toMatchObject({
      ...ALLOWED,
      method: "ldap-bind",
      profile: "corp",
      identity: "alice",
    });
    expect(await auth("c", "bob", "bob-password")).toMatchObject({ ...INVALID, reason: "allowance-failed" });
  });

  it("continues for a valid certificate that maps to no entry, then allows AUTH", async () => {
    expect(await tls("c", fixture.chains.carol)).toMatchObject({ verdict: "continue", reason: "certificate-unmapped" });
    expect(await auth("c", "alice", "alice-password", fixture.chains.carol)).toMatchObject({
      verdict: "allow",
      method: "ldap-bind",
    });
  });

  it("rejects an invalid certificate at STARTTLS and at AUTH (onInvalidCertificate: reject)", async () => {
    expect(await tls("c", fixture.chains.expired)).toMatchObject({ ...REFUSED, reason: "certificate-expired" });
    expect(await auth("c", "alice", "alice-password", fixture.chains.expired)).toMatchObject({
      ...REFUSED,
      reason: "certificate-expired",
    });
  });
});

describe("the HTTP contract in workerd", () => {
  const body = {
    listener: "submission",
    client: { ip: "192.0.2.25" },
    tls: null,
    mechanism: "PLAIN",
    username: "alice",
    password: "alice-password",
  };

  it("answers 401 without a token and with a wrong one", async () => {
    for (const token of [null, "wrong-token"]) {
      const response = await post("/v1/decide/auth", body, token);
      expect(response.status).toBe(401);
      expect(response.type).toBe("application/problem+json");
    }
  });

  it("answers 400 naming the field for a malformed call", async () => {
    const notJson = await post("/v1/decide/auth", "{not json");
    expect(notJson).toMatchObject({
      status: 400,
      type: "application/problem+json",
      body: { errors: [{ field: "(body)" }] },
    });
    const missing = await post("/v1/decide/auth", { ...body, username: undefined });
    expect(missing.status).toBe(400);
    expect((missing.body.errors as { field: string }[]).map((error) => error.field)).toContain("username");
    const unknownListener = await post("/v1/decide/auth", { ...body, listener: "nope" });
    expect(unknownListener).toMatchObject({ status: 400, body: { errors: [{ field: "listener" }] } });
  });

  it("serves /healthz, and /readyz with the directories and the CRL source", async () => {
    expect(await (await SELF.fetch(`${BASE}/healthz`)).json()).toEqual({ status: "ok" });
    const ready = await SELF.fetch(`${BASE}/readyz`);
    // The "down" directory is down on purpose: not ready, and it says which one.
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({
      status: "not-ready",
      directories: {
        corp: { ready: true },
        down: { ready: false },
        failover: { ready: true },
        secure: { ready: true },
        untrusted: { ready: false },
      },
      crlSources: { intermediate: { ready: true } },
    });
  });
});

describe("decision cache and metrics in workerd", () => {
  const get = async (path: string, token: string | null = TEST_TOKEN): Promise<Response> =>
    await SELF.fetch(`${BASE}${path}`, { headers: token === null ? {} : { Authorization: `Bearer ${token}` } });

  it("answers a repeated decision from the isolate's cache, and never for another user with the same password", async () => {
    expect(await auth("cached", "alice", "alice-password")).toMatchObject({
      ...ALLOWED,
      identity: "alice",
      profile: "cached",
    });
    expect(await auth("cached", "alice", "alice-password")).toMatchObject({ ...ALLOWED, identity: "alice" });
    expect(await auth("cached", "bob", "alice-password")).toMatchObject({
      ...INVALID,
      reason: "invalid-credentials",
      identity: null,
    });
    const stats = (await (await get("/v1/cache")).json()) as {
      profiles: Record<string, { enabled: boolean; hits: number }>;
    };
    expect(stats.profiles.cached).toMatchObject({ enabled: true });
    expect(stats.profiles.cached?.hits).toBeGreaterThanOrEqual(1);
    expect(stats.profiles.corp).toMatchObject({ enabled: false });
  });

  it("serves /v1/ping and /metrics to a token holder only", async () => {
    expect(await (await get("/v1/ping")).json()).toEqual({ ok: true });
    expect((await get("/v1/ping", null)).status).toBe(401);
    expect((await get("/metrics", null)).status).toBe(401);
    const metrics = await get("/metrics");
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get("Content-Type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(await metrics.text()).toMatch(
      /^smtpgate_decisions_total\{kind="auth",verdict="allow",reason="ok",method="ldap-bind",profile="cached"\} \d+$/m,
    );
  });
});
