// Running the API: the start-up probe of every directory host (a warn line with the fix for each failure, and
// the API starts anyway), readable directory failures in decision lines, reloads that keep decisions in flight
// on the old gate, and a stop that lets them finish.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../../api/config/load.ts";
import type { ConfigInput } from "../../api/config/schema.ts";
import { API_TOKENS_CONFIG, slapdDirectory, TEST_TOKEN, startTestApi, type TestApi } from "../../dev/api.ts";
import { startBlackHole, type BlackHole } from "../../dev/network.ts";
import { freePort } from "../../dev/ports.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";

const { alice, bob } = SEED.users;
const started: { close(): Promise<void> }[] = [];
let slapd: SlapdInstance;
let hole: BlackHole;

beforeAll(async () => {
  [slapd, hole] = await Promise.all([startSlapd(), startBlackHole()]);
  started.push(slapd, hole);
});

afterAll(async () => {
  for (const thing of started.reverse()) await thing.close();
});

function configFor(directory: Record<string, unknown>, api: Record<string, unknown> = {}): ConfigInput {
  return {
    directories: {
      corp: slapdDirectory(slapd, { connectTimeoutMs: 500, operationTimeoutMs: 500, ...directory }) as never,
    },
    smtpAuthQueries: {
      q: { directory: "corp", allowance: { filter: `(&(uid={u})(memberOf=${SEED.smtpUsersGroupDn}))` } },
    },
    authProfiles: { corp: { type: "ldap", query: "q" } },
    listeners: { submission: { authProfile: "corp" } },
    api: { ...API_TOKENS_CONFIG, ...api },
  };
}

async function apiWith(config: ConfigInput, bindPassword: string = SEED.servicePassword): Promise<TestApi> {
  const server = await startTestApi(config, { BIND_PW: bindPassword });
  started.push(server);
  return server;
}

const probeWarnings = (server: TestApi) =>
  server.logs.filter((record) => record.msg === "directory host failed the start-up probe");

describe("the start-up probe", () => {
  it("logs each host that answers at info, and nothing at warn, when all is well", async () => {
    const server = await apiWith(configFor({ hosts: [slapd.ldapUrl, slapd.ldapsUrl] }));
    expect(server.logs.filter((record) => record.msg === "directory host answers").map((r) => r.host)).toEqual([
      slapd.ldapUrl,
      slapd.ldapsUrl,
    ]);
    expect(probeWarnings(server)).toEqual([]);
  });

  it("names a refused service bind and the secret to check, and the API still starts", async () => {
    const server = await apiWith(configFor({}), "wrong-service-password");
    expect(probeWarnings(server)).toEqual([
      expect.objectContaining({
        level: "warn",
        directory: "corp",
        host: slapd.ldapUrl,
        detail: `service bind as ${SEED.serviceDn} refused: invalid credentials (49)`,
        fix: "check directories.corp.bind.dn and the password in BIND_PW",
      }),
    ]);
    // The same words in the decision line, now a warn: no more "LDAP result 49 ( Code: 0x31)".
    expect(await server.decideAuth({ username: "alice", password: alice.password })).toMatchObject({
      verdict: "tempfail",
    });
    const line = server.logs.findLast((record) => record.msg === "decision");
    expect(line).toMatchObject({
      level: "warn",
      detail: `directory corp: ${slapd.ldapUrl}: service bind as ${SEED.serviceDn} refused: invalid credentials (49)`,
    });
  });

  it("names the host and port that refuse the connection, and a black hole, within the timeouts", async () => {
    const port = await freePort();
    const began = Date.now();
    const server = await apiWith(configFor({ hosts: [`ldap://127.0.0.1:${port}`, hole.url] }));
    expect(Date.now() - began).toBeLessThan(3_000);
    const [refused, silent] = probeWarnings(server);
    expect(refused).toMatchObject({
      host: `ldap://127.0.0.1:${port}`,
      detail: expect.stringContaining("ECONNREFUSED"),
      fix: `nothing listens on 127.0.0.1:${port}: check directories.corp.hosts[0] and that the LDAP server runs`,
    });
    expect(silent).toMatchObject({
      host: hole.url,
      fix: expect.stringMatching(/^no answer from 127\.0\.0\.1:\d+ within directories\.corp\.connectTimeoutMs/),
    });
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it("names caFile for a certificate the CA bundle does not vouch for, and serverName for a wrong name", async () => {
    const wrongCa = await apiWith(configFor({ hosts: [slapd.ldapsUrl], tls: { caFile: slapd.pki.otherCaFile } }));
    expect(probeWarnings(wrongCa)[0]?.fix).toBe(
      `directories.corp.tls.caFile (${slapd.pki.otherCaFile}) does not hold the CA that signed the directory's certificate`,
    );
    const wrongName = await apiWith(
      configFor({ hosts: [slapd.ldapUrl], tls: { caFile: slapd.pki.caFile, serverName: "ldap.example.net" } }),
    );
    expect(probeWarnings(wrongName)[0]?.fix).toMatch(
      /^the directory's certificate does not carry the name ldap\.example\.net: set directories\.corp\.tls\.serverName/,
    );
  });
});

describe("decision lines", () => {
  it("give a deny the filled filter and base it asked, never the password", async () => {
    const server = await apiWith(configFor({}));
    await server.decideAuth({ username: "mallory*", password: "mallory-secret" });
    await server.decideAuth({ username: "bob", password: bob.password });
    const [unknown, refused] = server.logs.filter((record) => record.msg === "decision");
    expect(unknown).toMatchObject({ reason: "no-such-user", filter: "(uid=mallory\\2a)", base: SEED.baseDn });
    expect(refused).toMatchObject({
      level: "info",
      reason: "allowance-failed",
      filter: `(&(uid=bob)(memberOf=${SEED.smtpUsersGroupDn}))`,
      base: SEED.baseDn,
    });
    expect(JSON.stringify(server.logs)).not.toContain("mallory-secret");
    expect(JSON.stringify(server.logs)).not.toContain(bob.password);
  });
});

const AUTH = {
  listener: "submission",
  client: { ip: "192.0.2.25" },
  mechanism: "PLAIN",
  username: "alice",
  password: alice.password,
};

function decide(url: string, body: Record<string, unknown> = AUTH): Promise<Response> {
  return fetch(`${url}/v1/decide/auth`, {
    method: "POST",
    headers: { Authorization: `Bearer ${TEST_TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

describe("reload", () => {
  it("serves the new configuration at once while a decision in flight finishes on the old gate", async () => {
    // The old configuration asks a directory that never answers: its decision is in flight for about a second.
    const server = await apiWith(configFor({ hosts: [hole.url], connectTimeoutMs: 1_000, operationTimeoutMs: 1_000 }));
    const inFlight = decide(server.url);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const next = configFor({});
    next.listeners = { ...next.listeners, added: { authProfile: "corp" } };
    await server.reload(validateConfig(next, "reloaded"));

    const fresh = await decide(server.url, { ...AUTH, listener: "added" });
    expect(await fresh.json()).toMatchObject({ verdict: "allow", identity: "alice" });
    const old = await inFlight;
    expect(old.status).toBe(200);
    expect(await old.json()).toMatchObject({ verdict: "tempfail", reason: "directory-unavailable" });
  });

  it("refuses a configuration it cannot build and keeps the one in force", async () => {
    const server = await apiWith(configFor({}));
    const broken = validateConfig(configFor({ tls: { caFile: "/nonexistent/ca.pem" } }), "reloaded");
    await expect(server.reload(broken)).rejects.toThrow(/directories\.corp\.tls\.caFile: cannot read/);
    expect(await (await decide(server.url)).json()).toMatchObject({ verdict: "allow" });
  });
});

describe("stopping", () => {
  it("lets a decision in flight get its answer, and takes no new connection meanwhile", async () => {
    const server = await apiWith(configFor({ hosts: [hole.url], connectTimeoutMs: 600, operationTimeoutMs: 600 }));
    const inFlight = decide(server.url);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closing = server.close();
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
    const answer = await inFlight;
    expect(answer.status).toBe(200);
    expect(await answer.json()).toMatchObject({ verdict: "tempfail" });
    await closing;
  });

  it("cuts what is still running after api.shutdownGraceMs", async () => {
    const server = await apiWith(
      configFor({ hosts: [hole.url], connectTimeoutMs: 3_000, operationTimeoutMs: 3_000 }, { shutdownGraceMs: 200 }),
    );
    const inFlight = decide(server.url);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const began = Date.now();
    await server.close();
    expect(Date.now() - began).toBeLessThan(2_000);
    await expect(inFlight).rejects.toThrow();
  });
});
