// The HTTP contract of the decision API: who may call it, and what a malformed call gets (RFC 9457).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_TOKENS_CONFIG, TEST_TOKEN, TEST_TOKEN_NEXT, startTestApi, type TestApi } from "../../dev/api.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";
import { z } from "zod";
import { verdictSchema } from "../../contract/verdict.ts";

// Strict here: the API sends exactly the contract's fields (a relay, parsing leniently, would not notice more).
const exactVerdict = z.strictObject(verdictSchema.shape);

let slapd: SlapdInstance;
let api: TestApi;

const VALID = {
  listener: "submission",
  client: { ip: "2001:db8::25" },
  tls: null,
  mechanism: "PLAIN",
  username: "alice",
  password: SEED.users.alice.password,
};

beforeAll(async () => {
  slapd = await startSlapd();
  api = await startTestApi(
    {
      directories: {
        corp: {
          hosts: [slapd.ldapUrl],
          tls: { caFile: slapd.pki.caFile },
          bind: { dn: SEED.serviceDn, password: { env: "BIND_PW" } },
          baseDn: SEED.baseDn,
        },
      },
      smtpAuthQueries: { q: { directory: "corp" } },
      authProfiles: { corp: { type: "ldap", query: "q" } },
      listeners: { submission: { authProfile: "corp" } },
      api: { ...API_TOKENS_CONFIG, maxBodyBytes: 4096 },
    },
    { BIND_PW: SEED.servicePassword },
  );
});

afterAll(async () => {
  await api?.close();
  await slapd?.close();
});

function expectProblem(response: { status: number; body: Record<string, unknown>; headers: Headers }, status: number) {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  expect(response.body).toMatchObject({
    status,
    type: expect.stringMatching(/^https:\/\//),
    title: expect.any(String),
    detail: expect.any(String),
  });
}

describe("API tokens", () => {
  it("refuses a call without a token with 401 and says nothing about the decision", async () => {
    const response = await api.post("/v1/decide/auth", VALID, null);
    expectProblem(response, 401);
    expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(response.body).not.toHaveProperty("verdict");
  });

  it.each([["wrong-token-0123456789"], [`${TEST_TOKEN}x`], [TEST_TOKEN.slice(0, -1)]])(
    "refuses the wrong token %j with 401",
    async (token) => {
      expectProblem(await api.post("/v1/decide/auth", VALID, token), 401);
    },
  );

  it("refuses a token in another scheme", async () => {
    const response = await fetch(`${api.url}/v1/decide/auth`, {
      method: "POST",
      headers: { Authorization: `Basic ${TEST_TOKEN}` },
      body: JSON.stringify(VALID),
    });
    expect(response.status).toBe(401);
  });

  it("accepts both configured tokens (rotation)", async () => {
    for (const token of [TEST_TOKEN, TEST_TOKEN_NEXT]) {
      const response = await api.post("/v1/decide/auth", VALID, token);
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ verdict: "allow" });
    }
  });

  it("checks the token before reading the body", async () => {
    expectProblem(await api.post("/v1/decide/auth", "not json", null), 401);
  });
});

describe("malformed calls get 400 problem+json naming the field", () => {
  it.each([
    ["a body that is not JSON", "{not json", "(body)"],
    ["a JSON array", [], "(top level)"],
    ["no username", { ...VALID, username: undefined }, "username"],
    ["a number as password", { ...VALID, password: 12 }, "password"],
    ["an unknown mechanism", { ...VALID, mechanism: "CRAM-MD5" }, "mechanism"],
    ["a client IP that is not an IP", { ...VALID, client: { ip: "mail.example.com" } }, "client.ip"],
    ["no client", { ...VALID, client: undefined }, "client"],
    ["an unknown field", { ...VALID, extra: true }, "(top level)"],
    ["a listener that does not exist", { ...VALID, listener: "nope" }, "listener"],
    ["a TLS object without version", { ...VALID, tls: { cipher: "x" } }, "tls.version"],
  ])("%s", async (_, body, field) => {
    const response = await api.post("/v1/decide/auth", body);
    expectProblem(response, 400);
    const errors = response.body.errors as { field: string; message: string }[];
    expect(errors.map((error) => error.field)).toContain(field);
    expect(String(response.body.detail)).toContain(field);
  });

  it("answers 413 for a body over the limit", async () => {
    expectProblem(await api.post("/v1/decide/auth", { ...VALID, username: "a".repeat(8192) }), 413);
  });

  it("answers 413 for a chunked body over the limit (no Content-Length to go by), and takes one under it", async () => {
    const chunked = (text: string) =>
      fetch(`${api.url}/v1/decide/auth`, {
        method: "POST",
        headers: { Authorization: `Bearer ${TEST_TOKEN}`, "Content-Type": "application/json" },
        body: new ReadableStream({
          start(controller) {
            for (let at = 0; at < text.length; at += 1000)
              controller.enqueue(new TextEncoder().encode(text.slice(at, at + 1000)));
            controller.close();
          },
        }),
        duplex: "half",
      } as RequestInit);
    const tooLarge = await chunked(JSON.stringify({ ...VALID, username: "a".repeat(8192) }));
    expect(tooLarge.status).toBe(413);
    expect(await tooLarge.json()).toMatchObject({ status: 413, type: expect.stringMatching(/body-too-large$/) });
    const fine = await chunked(JSON.stringify(VALID));
    expect(fine.status).toBe(200);
    expect(await fine.json()).toMatchObject({ verdict: "allow" });
  });

  it("answers 404 problem+json for an unknown route", async () => {
    expectProblem(await api.post("/v1/decide/nothing", VALID), 404);
  });

  it("never echoes the password in a problem", async () => {
    const response = await api.post("/v1/decide/auth", { ...VALID, mechanism: "XX", password: "secret-in-a-bad-call" });
    expect(JSON.stringify(response.body)).not.toContain("secret-in-a-bad-call");
  });
});

describe("every nullable field of the request schemas accepts null as well as absence", () => {
  const TLS_REQUEST = {
    listener: "submission",
    client: { ip: "192.0.2.25", helo: "client.example" },
    tls: { version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384", sni: "mail.example.com" },
    certificate: null,
  };
  const AUTH_REQUEST = { ...VALID, tls: TLS_REQUEST.tls, client: TLS_REQUEST.client, authzid: "alice" };

  it.each([
    ["client.helo", { ...AUTH_REQUEST, client: { ip: "192.0.2.25", helo: null } }],
    ["tls.sni", { ...AUTH_REQUEST, tls: { ...AUTH_REQUEST.tls, sni: null } }],
    ["authzid", { ...AUTH_REQUEST, authzid: null }],
    ["tls", { ...AUTH_REQUEST, tls: null }],
    ["certificate", { ...AUTH_REQUEST, certificate: null }],
  ])("/v1/decide/auth: %s", async (_, body) => {
    const response = await api.post("/v1/decide/auth", body);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ verdict: "allow", identity: "alice" });
  });

  it.each([
    ["client.helo", { ...TLS_REQUEST, client: { ip: "192.0.2.25", helo: null } }],
    ["tls.sni", { ...TLS_REQUEST, tls: { ...TLS_REQUEST.tls, sni: null } }],
    ["certificate", { ...TLS_REQUEST, certificate: null }],
  ])("/v1/decide/tls: %s", async (_, body) => {
    const response = await api.post("/v1/decide/tls", body);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ verdict: "continue", reason: "certificate-not-used" });
  });

  it("logs a null helo as absent, the way a relay that sends none is logged", async () => {
    await api.post("/v1/decide/auth", { ...AUTH_REQUEST, client: { ip: "192.0.2.99", helo: null } });
    const line = api.logs.findLast((record) => record.msg === "decision" && record.clientIp === "192.0.2.99");
    expect(line).toBeDefined();
    expect(line?.helo).toBeUndefined();
  });
});

describe("OpenAPI", () => {
  it("serves /openapi.json without a token, describing the decision endpoints", async () => {
    const response = await fetch(`${api.url}/openapi.json`);
    expect(response.status).toBe(200);
    const document = (await response.json()) as {
      openapi: string;
      paths: Record<string, unknown>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    expect(document.openapi).toBe("3.1.0");
    expect(Object.keys(document.paths)).toEqual(
      expect.arrayContaining(["/v1/decide/tls", "/v1/decide/auth", "/v1/listeners/{name}"]),
    );
    expect(Object.keys(document.components.schemas.AuthRequest?.properties ?? {})).toEqual(
      expect.arrayContaining(["listener", "client", "mechanism", "username", "password", "certificate"]),
    );
  });

  it("describes the verdicts the API really gives", async () => {
    const verdict = await api.post("/v1/decide/auth", VALID);
    expect(exactVerdict.safeParse(verdict.body).success).toBe(true);
    const denied = await api.post("/v1/decide/auth", { ...VALID, password: "wrong" });
    expect(exactVerdict.safeParse(denied.body).success).toBe(true);
  });
});

describe("service endpoints", () => {
  it("answers /healthz without a token", async () => {
    const response = await fetch(`${api.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok" });
  });

  it("answers /readyz with each directory's state", async () => {
    const response = await fetch(`${api.url}/readyz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: "ready", directories: { corp: { ready: true } } });
  });

  it("gives every response a request id, and keeps one the caller sent", async () => {
    const response = await fetch(`${api.url}/healthz`, { headers: { "X-Request-Id": "relay-42" } });
    expect(response.headers.get("x-request-id")).toBe("relay-42");
    const fresh = await fetch(`${api.url}/healthz`);
    expect(fresh.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });
});
