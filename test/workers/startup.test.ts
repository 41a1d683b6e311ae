// Start-up of the Worker from its bindings, inside workerd: a configuration it cannot run is a clear 500
// problem+json naming each path and what to use instead (and one log line), never a crash loop; a good one,
// as a JSON var or as JSON/YAML text, serves decisions.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import worker from "../../api/runtime/workers/index.ts";
import { TEST_TOKEN, workerTestConfig } from "./fixture.ts";

const fixture = inject("workers");

/** A small valid configuration (flow B against the test slapd), to break one piece at a time. */
function baseConfig(): Record<string, unknown> {
  const full = workerTestConfig(fixture);
  return {
    directories: { corp: full.directories.corp },
    smtpAuthQueries: { corp: full.smtpAuthQueries?.corp },
    authProfiles: { corp: full.authProfiles.corp },
    listeners: { submission: full.listeners.submission },
    api: full.api,
  };
}

async function call(
  bindings: Record<string, unknown>,
  request: Request = new Request("https://smtpgate.test/healthz"),
): Promise<{ status: number; type: string | null; body: Record<string, unknown> }> {
  const ctx = createExecutionContext();
  const response = await worker.fetch(request, { ...env, ...bindings }, ctx);
  await waitOnExecutionContext(ctx);
  return {
    status: response.status,
    type: response.headers.get("Content-Type"),
    body: (await response.json()) as Record<string, unknown>,
  };
}

function decideAlice(): Request {
  return new Request("https://smtpgate.test/v1/decide/auth", {
    method: "POST",
    headers: { Authorization: `Bearer ${TEST_TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify({
      listener: "submission",
      client: { ip: "192.0.2.25" },
      tls: null,
      mechanism: "PLAIN",
      username: "alice",
      password: "alice-password",
    }),
  });
}

/** The config problem the Worker reports for `field`. */
async function problemFor(
  config: unknown,
  extra: Record<string, unknown> = {},
): Promise<{ status: number; type: string | null; errors: { field: string; message: string }[]; detail: string }> {
  const { status, type, body } = await call({ SMTPGATE_CONFIG: config, ...extra });
  return {
    status,
    type,
    errors: (body.errors ?? []) as { field: string; message: string }[],
    detail: String(body.detail),
  };
}

describe("what workerd cannot do is refused at start-up, saying why and what to use", () => {
  it("refuses StartTLS", async () => {
    const config = baseConfig();
    (config.directories as Record<string, Record<string, unknown>>).corp = {
      ...(config.directories as Record<string, object>).corp,
      startTls: true,
      allowPlaintext: false,
    };
    const problem = await problemFor(config);
    expect(problem).toMatchObject({ status: 500, type: "application/problem+json" });
    expect(problem.errors).toEqual([
      {
        field: "directories.corp.hosts[0]",
        message: expect.stringMatching(
          /StartTLS does not work inside workerd.*use ldaps:\/\/ with a publicly trusted certificate/,
        ),
      },
    ]);
    expect(problem.detail).toContain("binding SMTPGATE_CONFIG");
  });

  it("refuses a custom CA and an expected server name", async () => {
    const config = baseConfig();
    const corp = (config.directories as Record<string, Record<string, unknown>>).corp as Record<string, unknown>;
    corp.hosts = ["ldaps://ldap.example.com"];
    corp.tls = { caFile: "/etc/smtpgate/corp-ca.pem", serverName: "ldap.corp.example" };
    const problem = await problemFor(config);
    expect(problem.errors.map((error) => error.field)).toEqual([
      "directories.corp.tls.caFile",
      "directories.corp.tls.serverName",
    ]);
    expect(problem.errors[0]?.message).toMatch(/custom CAs are not supported on Workers.*publicly trusted certificate/);
  });

  it("refuses files: trust anchors, intermediates and CRLs", async () => {
    const config = {
      ...baseConfig(),
      certificateQueries: { q: { directory: "corp", filter: "(mail={email})" } },
      crlSources: { ca: { file: "/etc/smtpgate/ca.crl" } },
      authProfiles: {
        corp: { type: "ldap", query: "corp" },
        cert: {
          type: "certificate",
          query: "q",
          trustAnchors: { file: "/etc/smtpgate/ca.pem" },
          intermediates: { file: "/etc/smtpgate/int.pem" },
          revocation: { crlSources: ["ca"] },
        },
      },
    };
    const problem = await problemFor(config);
    expect(problem.errors.map((error) => error.field).sort()).toEqual([
      "authProfiles.cert.intermediates.file",
      "authProfiles.cert.trustAnchors.file",
      "crlSources.ca.file",
    ]);
    expect(problem.errors.map((error) => error.message).join("\n")).toMatch(/trustAnchors: \{ pem:[\s\S]*give its url/);
  });
});

describe("the brute-force store on Workers", () => {
  it("refuses Redis, pointing at the Durable Object store", async () => {
    const config = { ...baseConfig(), bruteForceStore: { type: "redis", url: "redis://127.0.0.1:6379" } };
    expect((await problemFor(config)).errors).toEqual([
      { field: "bruteForceStore.type", message: expect.stringMatching(/no Redis store.*use durable-object/) },
    ]);
  });

  it("refuses a binding that is not a Durable Object namespace, saying what wrangler.toml needs", async () => {
    for (const binding of ["NOT_BOUND", "TEST_TOKEN"]) {
      const config = { ...baseConfig(), bruteForceStore: { type: "durable-object", binding } };
      expect((await problemFor(config)).errors).toEqual([
        {
          field: "bruteForceStore.binding",
          message: expect.stringContaining(
            `no Durable Object namespace bound as ${binding}: add [[durable_objects.bindings]] name = "${binding}", class_name = "BruteForceObject"`,
          ),
        },
      ]);
    }
  });

  it("asks for the binding of type durable-object", async () => {
    const config = { ...baseConfig(), bruteForceStore: { type: "durable-object" } };
    expect((await problemFor(config)).errors).toEqual([
      {
        field: "bruteForceStore.binding",
        message: "type durable-object needs the binding of its Durable Object namespace",
      },
    ]);
  });
});

describe("configuration errors", () => {
  it("names a schema problem by its path", async () => {
    const config = { ...baseConfig(), listeners: { submission: { authProfile: "nope" } } };
    expect((await problemFor(config)).errors).toEqual([
      { field: "listeners.submission.authProfile", message: 'no authProfiles entry named "nope"' },
    ]);
  });

  it("names a missing secret by the path that references it", async () => {
    const config = baseConfig();
    const problem = await problemFor(config, { BIND_PW: undefined });
    expect(problem.errors).toEqual([
      {
        field: "directories.corp.bind.password",
        message:
          "Workers secret BIND_PW is not set (wrangler secret put BIND_PW; for wrangler dev, a line in .dev.vars)",
      },
    ]);
  });

  it("says where to put the configuration when the binding is missing", async () => {
    const problem = await problemFor(undefined);
    expect(problem.errors[0]?.message).toMatch(/SMTPGATE_CONFIG binding is not set/);
  });

  it("reports text that is neither JSON nor YAML", async () => {
    expect((await problemFor('{"directories": ')).errors[0]).toEqual({
      field: "(top level)",
      message: expect.stringMatching(/^not valid YAML or JSON/),
    });
  });

  it("is not a crash loop: the same bad configuration keeps answering 500, a good one serves", async () => {
    const bad = { ...baseConfig(), api: { tokens: [] } };
    expect((await problemFor(bad)).status).toBe(500);
    expect((await problemFor(bad)).status).toBe(500);
    expect(await call({ SMTPGATE_CONFIG: baseConfig() })).toMatchObject({ status: 200, body: { status: "ok" } });
  });
});

describe("configuration forms", () => {
  it("takes the configuration as a JSON var (an object)", async () => {
    expect(await call({ SMTPGATE_CONFIG: baseConfig() }, decideAlice())).toMatchObject({
      status: 200,
      body: { verdict: "allow", identity: "alice" },
    });
  });

  it("takes it as JSON text", async () => {
    expect(await call({ SMTPGATE_CONFIG: JSON.stringify(baseConfig()) }, decideAlice())).toMatchObject({
      status: 200,
      body: { verdict: "allow", identity: "alice" },
    });
  });

  it("takes it as YAML text", async () => {
    const yaml = [
      "directories:",
      "  corp:",
      `    hosts: ["${fixture.ldapUrl}"]`,
      "    startTls: false",
      "    allowPlaintext: true",
      `    bind: { dn: "${fixture.serviceDn}", password: { env: BIND_PW } }`,
      `    baseDn: ${fixture.baseDn}`,
      "smtpAuthQueries:",
      "  corp: { directory: corp }",
      "authProfiles:",
      "  corp: { type: ldap, query: corp }",
      "listeners:",
      "  submission: { authProfile: corp }",
      "api:",
      "  tokens: [{ env: TEST_TOKEN }]",
    ].join("\n");
    expect(await call({ SMTPGATE_CONFIG: yaml }, decideAlice())).toMatchObject({
      status: 200,
      body: { verdict: "allow", identity: "alice" },
    });
  });
});
