// RFC 4513 §5.1.2: a simple bind with a DN and an empty password is an "unauthenticated bind". With
// `allow bind_anon_dn` OpenLDAP answers it with success, and a naive gate would let anyone relay as anyone.
import { Client } from "ldapts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_TOKENS_CONFIG, startTestApi, type TestApi } from "../../dev/api.ts";
import { startCountingProxy, type CountingProxy } from "../../dev/network.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";
import { LdapDirectory } from "../../api/ldap/ldap-directory.ts";

let slapd: SlapdInstance;
let proxy: CountingProxy;
let api: TestApi;

beforeAll(async () => {
  slapd = await startSlapd({ allowBindAnonDn: true });
  proxy = await startCountingProxy({ host: "127.0.0.1", port: slapd.ports.ldap });
  api = await startTestApi(
    {
      directories: {
        corp: {
          hosts: [proxy.url()],
          tls: { caFile: slapd.pki.caFile, serverName: "localhost" },
          bind: { dn: SEED.serviceDn, password: { env: "BIND_PW" } },
          baseDn: SEED.baseDn,
        },
      },
      smtpAuthQueries: { q: { directory: "corp" } },
      authProfiles: { corp: { type: "ldap", query: "q" } },
      listeners: { submission: { authProfile: "corp" } },
      api: API_TOKENS_CONFIG,
    },
    { BIND_PW: SEED.servicePassword },
  );
});

afterAll(async () => {
  await api?.close();
  await proxy?.close();
  await slapd?.close();
});

describe("empty password against a slapd with allow bind_anon_dn", () => {
  it("is the trap: a plain ldapts bind with the DN and no password succeeds", async () => {
    const client = new Client({ url: slapd.ldapUrl });
    try {
      await expect(client.bind(SEED.users.alice.dn, "")).resolves.toBeUndefined();
    } finally {
      await client.unbind();
    }
  });

  it("is denied by smtpgate with 535 and nothing sent to the directory", async () => {
    await api.decideAuth({ username: "alice", password: SEED.users.alice.password });
    proxy.reset();
    for (const mechanism of ["PLAIN", "LOGIN"]) {
      expect(await api.decideAuth({ username: "alice", password: "", mechanism })).toMatchObject({
        verdict: "deny",
        authenticated: false,
        reason: "empty-password",
        smtp: { code: 535, enhanced: "5.7.8" },
      });
    }
    expect(proxy.bytesToServer).toBe(0);
  });

  it("is refused by the directory adapter too, should a caller skip the core's check", async () => {
    const directory = new LdapDirectory({
      name: "raw",
      hosts: [proxy.url()],
      mode: "failover",
      failbackAfterMs: 1000,
      hostDownForMs: 1000,
      security: {
        startTls: true,
        ca: slapd.pki.caPem,
        serverName: "localhost",
        connectTimeoutMs: 1000,
        operationTimeoutMs: 1000,
      },
      maxConnections: 1,
    });
    proxy.reset();
    try {
      expect(await directory.bindAsUser(SEED.users.alice.dn, "")).toEqual({
        ok: true,
        value: { bound: false, resultCode: 49, message: "empty DN or password refused locally" },
      });
      expect(proxy.bytesToServer).toBe(0);
    } finally {
      await directory.close();
    }
  });

  it("still allows the real password", async () => {
    expect(await api.decideAuth({ username: "alice", password: SEED.users.alice.password })).toMatchObject({
      verdict: "allow",
    });
  });
});
