// What happens when the directory is down, slow, or not who it claims to be: a temporary failure (454), never an
// accept; failover to the next host and back; TLS to the directory verified.
import { setTimeout as delay } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConfigInput } from "../../api/config/schema.ts";
import { API_TOKENS_CONFIG, startTestApi, type TestApi } from "../../dev/api.ts";
import { startBlackHole, type BlackHole } from "../../dev/network.ts";
import { freePorts } from "../../dev/ports.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";

const { alice } = SEED.users;
const started: { close(): Promise<void> }[] = [];

function configFor(directory: Record<string, unknown>): ConfigInput {
  return {
    directories: {
      corp: {
        bind: { dn: SEED.serviceDn, password: { env: "BIND_PW" } },
        baseDn: SEED.baseDn,
        connectTimeoutMs: 500,
        operationTimeoutMs: 500,
        ...directory,
      } as never,
    },
    smtpAuthQueries: {
      q: { directory: "corp", allowance: { filter: `(&(uid={u})(memberOf=${SEED.smtpUsersGroupDn}))` } },
      "q-dn": {
        directory: "corp",
        bindDnTemplate: `uid={u},${SEED.peopleDn}`,
        allowance: { filter: `(&(uid={u})(memberOf=${SEED.smtpUsersGroupDn}))` },
      },
    },
    authProfiles: { corp: { type: "ldap", query: "q" }, "corp-dn": { type: "ldap", query: "q-dn" } },
    listeners: {
      submission: { authProfile: "corp" },
      lenient: { authProfile: "corp", onAllowanceFailure: "allow-temporarily" },
      "lenient-dn": { authProfile: "corp-dn", onAllowanceFailure: "allow-temporarily" },
    },
    api: API_TOKENS_CONFIG,
  };
}

async function api(directory: Record<string, unknown>): Promise<TestApi> {
  const server = await startTestApi(configFor(directory), { BIND_PW: SEED.servicePassword });
  started.push(server);
  return server;
}

const TEMPFAIL = {
  verdict: "tempfail",
  authenticated: false,
  reason: "directory-unavailable",
  smtp: { code: 454, enhanced: "4.7.0", text: "Temporary authentication failure" },
};

let primary: SlapdInstance;
let secondary: SlapdInstance;
let hole: BlackHole;

beforeAll(async () => {
  [primary, secondary, hole] = await Promise.all([startSlapd(), startSlapd(), startBlackHole()]);
  started.push(primary, secondary, hole);
});

afterAll(async () => {
  for (const thing of started.reverse()) await thing.close();
});

describe("every directory host down", () => {
  it("answers 454 when every host refuses the connection", async () => {
    const [a, b] = await freePorts(2);
    const server = await api({
      hosts: [`ldap://127.0.0.1:${a}`, `ldaps://127.0.0.1:${b}`],
      tls: { caFile: primary.pki.caFile },
    });
    expect(await server.decideAuth({ username: "alice", password: alice.password })).toMatchObject(TEMPFAIL);
    // Even where an allowance failure would be allowed temporarily: unavailable is never an accept.
    expect(await server.decideAuth({ listener: "lenient", username: "alice", password: alice.password })).toMatchObject(
      TEMPFAIL,
    );
    // The same without the search (a DN template): the bind and the read fail together.
    expect(
      await server.decideAuth({ listener: "lenient-dn", username: "alice", password: alice.password }),
    ).toMatchObject(TEMPFAIL);
    const line = server.logs.findLast((record) => record.msg === "decision");
    expect(String(line?.detail)).toMatch(/ECONNREFUSED/);
  });

  it("answers 454 when every host times out, within the configured timeouts", async () => {
    const hole2 = await startBlackHole();
    started.push(hole2);
    const server = await api({ hosts: [hole.url, hole2.url], tls: { caFile: primary.pki.caFile } });
    const began = Date.now();
    expect(await server.decideAuth({ username: "alice", password: alice.password })).toMatchObject(TEMPFAIL);
    // Two hosts, each given connect (500 ms) + operation (500 ms) at most: no SMTP client waits a minute.
    expect(Date.now() - began).toBeLessThan(5_000);
  });

  it("answers 454 when the directory disappears between the search and the bind", async () => {
    const lonely = await startSlapd();
    started.push(lonely);
    const server = await api({ hosts: [lonely.ldapUrl], tls: { caFile: lonely.pki.caFile } });
    expect(await server.decideAuth({ username: "alice", password: alice.password })).toMatchObject({
      verdict: "allow",
    });
    expect(
      await server.decideAuth({ listener: "lenient-dn", username: "alice", password: alice.password }),
    ).toMatchObject({ verdict: "allow", temporary: false });
    await lonely.stop();
    expect(await server.decideAuth({ username: "alice", password: alice.password })).toMatchObject(TEMPFAIL);
    expect(
      await server.decideAuth({ listener: "lenient-dn", username: "alice", password: alice.password }),
    ).toMatchObject(TEMPFAIL);
  });

  it("reports not-ready on /readyz while no host answers", async () => {
    const [port] = await freePorts(1);
    const server = await api({ hosts: [`ldap://127.0.0.1:${port}`] });
    const response = await fetch(`${server.url}/readyz`);
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ status: "not-ready", directories: { corp: { ready: false } } });
  });
});

describe("failover", () => {
  it("moves to the second host when the first stops, and back to the first after failbackAfterMs", async () => {
    const server = await api({
      hosts: [primary.ldapUrl, secondary.ldapUrl],
      mode: "failover",
      failbackAfterMs: 300,
      tls: { caFile: primary.pki.caFile },
    });
    const selector = server.directories.corp?.selector;
    expect(await server.decideAuth({ username: "alice", password: alice.password })).toMatchObject({
      verdict: "allow",
    });
    expect(selector?.active).toBe(0);

    await primary.stop();
    expect(await server.decideAuth({ username: "alice", password: alice.password })).toMatchObject({
      verdict: "allow",
    });
    expect(selector?.active).toBe(1);
    expect(selector?.failovers).toBe(1);

    await primary.start();
    // Within the period the secondary keeps serving...
    expect(await server.decideAuth({ username: "alice", password: alice.password })).toMatchObject({
      verdict: "allow",
    });
    expect(selector?.active).toBe(1);
    // ...and after it, the first host is tried first again. Stopping the secondary proves it serves alone. The
    // wait is the behaviour under test: failback is due to time passing (failbackAfterMs), not to an event.
    await delay(350);
    await secondary.stop();
    expect(await server.decideAuth({ username: "alice", password: alice.password })).toMatchObject({
      verdict: "allow",
    });
    expect(selector?.active).toBe(0);
    await secondary.start();
  });

  it("spreads decisions across hosts in loadbalance mode and skips a stopped one", async () => {
    const server = await api({
      hosts: [primary.ldapUrl, secondary.ldapUrl],
      mode: "loadbalance",
      tls: { caFile: primary.pki.caFile },
    });
    for (let i = 0; i < 4; i += 1)
      expect(await server.decideAuth({ username: "alice", password: alice.password })).toMatchObject({
        verdict: "allow",
      });
    await secondary.stop();
    for (let i = 0; i < 4; i += 1)
      expect(await server.decideAuth({ username: "alice", password: alice.password })).toMatchObject({
        verdict: "allow",
      });
    await secondary.start();
  });
});

describe("TLS to the directory", () => {
  it("works over StartTLS and over LDAPS with the right CA", async () => {
    for (const host of [primary.ldapUrl, primary.ldapsUrl]) {
      const server = await api({ hosts: [host], tls: { caFile: primary.pki.caFile } });
      expect(await server.decideAuth({ username: "alice", password: alice.password })).toMatchObject({
        verdict: "allow",
      });
    }
  });

  it.each(["ldap", "ldaps"] as const)(
    "refuses %s with a CA that did not sign the server's certificate",
    async (scheme) => {
      const server = await api({
        hosts: [scheme === "ldap" ? primary.ldapUrl : primary.ldapsUrl],
        tls: { caFile: primary.pki.otherCaFile },
      });
      expect(await server.decideAuth({ username: "alice", password: alice.password })).toMatchObject(TEMPFAIL);
      const line = server.logs.findLast((record) => record.msg === "decision");
      expect(String(line?.detail)).toMatch(/certificate/i);
    },
  );

  it.each(["ldap", "ldaps"] as const)(
    "refuses %s when the certificate does not carry the expected server name",
    async (scheme) => {
      const server = await api({
        hosts: [scheme === "ldap" ? primary.ldapUrl : primary.ldapsUrl],
        tls: { caFile: primary.pki.caFile, serverName: "ldap.example.net" },
      });
      expect(await server.decideAuth({ username: "alice", password: alice.password })).toMatchObject(TEMPFAIL);
      const line = server.logs.findLast((record) => record.msg === "decision");
      expect(String(line?.detail)).toMatch(/ldap\.example\.net/);
    },
  );

  it("refuses a server whose certificate the system store does not trust when no CA bundle is given", async () => {
    const server = await api({ hosts: [primary.ldapsUrl] });
    expect(await server.decideAuth({ username: "alice", password: alice.password })).toMatchObject(TEMPFAIL);
  });
});

describe("service identity", () => {
  it("is a temporary failure, not a deny, when the service bind is refused", async () => {
    const server = await startTestApi(configFor({ hosts: [primary.ldapUrl], tls: { caFile: primary.pki.caFile } }), {
      BIND_PW: "wrong-service-password",
    });
    started.push(server);
    expect(await server.decideAuth({ username: "alice", password: alice.password })).toMatchObject(TEMPFAIL);
  });

  it("works anonymously when no service bind is configured", async () => {
    const config = configFor({ hosts: [primary.ldapUrl], tls: { caFile: primary.pki.caFile } });
    delete (config.directories.corp as { bind?: unknown }).bind;
    const server = await startTestApi(config);
    started.push(server);
    expect(await server.decideAuth({ username: "alice", password: alice.password })).toMatchObject({
      verdict: "allow",
    });
  });
});
