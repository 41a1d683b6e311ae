// Flow B end to end at the API: real HTTP, real ldapts, a real slapd with StartTLS from the suite's CA.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_TOKENS_CONFIG, startTestApi, type TestApi } from "../../dev/api.ts";
import { startCountingProxy, type CountingProxy } from "../../dev/network.ts";
import { PASSWORD_SCHEMES, SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";

let slapd: SlapdInstance;
let proxy: CountingProxy;
let api: TestApi;

const ALLOWANCE = `(&(uid={u})(memberOf=${SEED.smtpUsersGroupDn}))`;
/** The same users bound directly, without the search (bindDnTemplate): every flow B test runs both ways. */
const DN_TEMPLATE = `uid={u},${SEED.peopleDn}`;
const WAYS = [
  { way: "search, then bind", submission: "submission", lenient: "lenient", profile: "corp", direct: false },
  {
    way: "direct bind by DN template",
    submission: "submission-dn",
    lenient: "lenient-dn",
    profile: "corp-dn",
    direct: true,
  },
];

beforeAll(async () => {
  slapd = await startSlapd();
  proxy = await startCountingProxy({ host: "127.0.0.1", port: slapd.ports.ldap });
  api = await startTestApi(
    {
      directories: {
        corp: {
          // Through the counting proxy, so tests can prove that nothing reached the directory.
          hosts: [proxy.url("ldap")],
          tls: { caFile: slapd.pki.caFile, serverName: "localhost" },
          bind: { dn: SEED.serviceDn, password: { env: "BIND_PW" } },
          baseDn: SEED.baseDn,
        },
      },
      smtpAuthQueries: {
        bind: { directory: "corp", filter: "(uid={u})", method: "bind", allowance: { filter: ALLOWANCE } },
        "bind-dn": { directory: "corp", bindDnTemplate: DN_TEMPLATE, method: "bind", allowance: { filter: ALLOWANCE } },
        "bind-by-mail": { directory: "corp", filter: "(mail={a})", method: "bind" },
        attribute: { directory: "corp", method: "password-attribute" },
        "attribute-plain": { directory: "corp", method: "password-attribute", allowPlaintextPasswords: true },
      },
      authProfiles: {
        corp: { type: "ldap", query: "bind" },
        "corp-dn": { type: "ldap", query: "bind-dn" },
        mail: { type: "ldap", query: "bind-by-mail" },
        attribute: { type: "ldap", query: "attribute" },
        "attribute-plain": { type: "ldap", query: "attribute-plain" },
      },
      listeners: {
        submission: { authProfile: "corp", onAllowanceFailure: "reject" },
        lenient: { authProfile: "corp", onAllowanceFailure: "allow-temporarily" },
        "submission-dn": { authProfile: "corp-dn", onAllowanceFailure: "reject" },
        "lenient-dn": { authProfile: "corp-dn", onAllowanceFailure: "allow-temporarily" },
        mail: { authProfile: "mail" },
        attribute: { authProfile: "attribute" },
        "attribute-plain": { authProfile: "attribute-plain" },
      },
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

const { alice, bob } = SEED.users;

describe.each(WAYS)("SMTP AUTH decisions against OpenLDAP (bind + allowance), $way", (way) => {
  const decide = (request: Parameters<TestApi["decideAuth"]>[0]) =>
    api.decideAuth({ listener: way.submission, ...request });

  it("allows alice: bind succeeds and she is in smtp-users", async () => {
    expect(await decide({ username: "alice", password: alice.password })).toMatchObject({
      verdict: "allow",
      authenticated: true,
      method: "ldap-bind",
      identity: "alice",
      dn: alice.dn,
      temporary: false,
      reason: "ok",
      smtp: { code: 235, enhanced: "2.7.0", text: "Authentication succeeded" },
      close: false,
      profile: way.profile,
      decisionId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
  });

  it("accepts AUTH LOGIN the same way", async () => {
    expect(await decide({ username: "alice", password: alice.password, mechanism: "LOGIN" })).toMatchObject({
      verdict: "allow",
    });
  });

  it("denies a wrong password with 535 5.7.8", async () => {
    expect(await decide({ username: "alice", password: "wrong" })).toMatchObject({
      verdict: "deny",
      authenticated: false,
      identity: null,
      reason: "invalid-credentials",
      smtp: { code: 535, enhanced: "5.7.8", text: "Authentication credentials invalid" },
    });
  });

  it("denies an unknown user with the same SMTP reply as a wrong password", async () => {
    const verdict = await decide({ username: "mallory", password: "x" });
    expect(verdict).toMatchObject({
      verdict: "deny",
      reason: "no-such-user",
      smtp: { code: 535, enhanced: "5.7.8", text: "Authentication credentials invalid" },
    });
  });

  it.runIf(way.direct)("binds the one entry a DN template names, where a search would find two", async () => {
    // dup is in no group: the bind succeeded and the allowance query has its say.
    expect(await decide({ username: "dup", password: SEED.users.dup.password })).toMatchObject({
      verdict: "deny",
      reason: "allowance-failed",
      dn: SEED.dupDns[0],
    });
  });

  it.runIf(!way.direct)("denies an ambiguous user (two entries with uid=dup) without binding", async () => {
    expect(await decide({ username: "dup", password: SEED.users.dup.password })).toMatchObject({
      verdict: "deny",
      reason: "ambiguous-user",
      smtp: { code: 535 },
    });
  });

  it("denies bob (right password, not in smtp-users) when the listener rejects on allowance failure", async () => {
    expect(await decide({ username: "bob", password: bob.password })).toMatchObject({
      verdict: "deny",
      reason: "allowance-failed",
      dn: bob.dn,
      smtp: { code: 535 },
    });
  });

  it("allows bob temporarily, marked, when the listener says allow-temporarily", async () => {
    expect(await decide({ listener: way.lenient, username: "bob", password: bob.password })).toMatchObject({
      verdict: "allow",
      authenticated: true,
      temporary: true,
      reason: "allowance-failed",
      smtp: { code: 235 },
    });
    // A wrong password is still a deny on that listener.
    expect(await decide({ listener: way.lenient, username: "bob", password: "nope" })).toMatchObject({
      verdict: "deny",
      reason: "invalid-credentials",
    });
  });

  it("sends not one byte to LDAP for an empty password", async () => {
    // Make sure pooled connections exist, so a leak would show up as bytes rather than a connection.
    await decide({ username: "alice", password: alice.password });
    proxy.reset();
    expect(await decide({ username: "alice", password: "" })).toMatchObject({
      verdict: "deny",
      reason: "empty-password",
      smtp: { code: 535, enhanced: "5.7.8" },
    });
    expect(await decide({ username: "", password: "" })).toMatchObject({
      verdict: "deny",
      reason: "empty-password",
    });
    expect(proxy.bytesToServer).toBe(0);
    expect(proxy.connections).toBe(0);
  });

  it("fills {a} for a user@domain login and fails closed without a domain", async () => {
    expect(await decide({ listener: "mail", username: "alice@example.com", password: alice.password })).toMatchObject({
      verdict: "allow",
      dn: alice.dn,
    });
    proxy.reset();
    expect(await decide({ listener: "mail", username: "alice", password: alice.password })).toMatchObject({
      verdict: "deny",
      reason: "no-such-user",
    });
    expect(proxy.bytesToServer).toBe(0);
  });
});

describe.each(WAYS)("injection attempts in the user name, $way", (way) => {
  const decide = (request: Parameters<TestApi["decideAuth"]>[0]) =>
    api.decideAuth({ listener: way.submission, ...request });

  it.each([
    ["*", "no-such-user"],
    ["*)(uid=*))(|(uid=*", "no-such-user"],
    ["alice)(uid=*", "no-such-user"],
    ["al*", "no-such-user"],
    ["\\", "no-such-user"],
    ["\\2a", "no-such-user"],
    // RFC 4514 specials: a DN template must keep them inside the one attribute value.
    [`alice,${SEED.peopleDn}`, "no-such-user"],
    ["alice+cn=alice", "no-such-user"],
    ["#0405616c696365", "no-such-user"],
    ["alice\u0000", "malformed-username"],
    ["x".repeat(10 * 1024), "malformed-username"],
  ])("denies %j (%s) and never authenticates", async (username, reason) => {
    // With the right password of a real user: a filter that matched more than intended would show here.
    const verdict = await decide({ username, password: alice.password });
    expect(verdict).toMatchObject({ verdict: "deny", authenticated: false, reason });
  });

  it("logs a cut-down user name for a 10 kB attempt", async () => {
    await decide({ username: "y".repeat(10 * 1024), password: "p" });
    const line = api.logs.findLast((record) => record.msg === "decision");
    expect(String(line?.user)).toMatch(/^y{128}…\(10240 chars\)$/);
  });
});

describe("password-attribute method", () => {
  it.each(PASSWORD_SCHEMES.filter((scheme) => scheme !== "plain"))(
    "verifies {%s} hashes read from the directory",
    async (scheme) => {
      const user = SEED.users[`${scheme}-user`];
      expect(
        await api.decideAuth({ listener: "attribute", username: user.uid, password: user.password }),
      ).toMatchObject({
        verdict: "allow",
        method: "ldap-password",
        identity: user.uid,
      });
      expect(
        await api.decideAuth({ listener: "attribute", username: user.uid, password: `${user.password}x` }),
      ).toMatchObject({
        verdict: "deny",
        reason: "invalid-credentials",
        method: "ldap-password",
      });
    },
  );

  it("refuses a plaintext userPassword unless the query allows plaintext", async () => {
    const user = SEED.users["plain-user"];
    expect(await api.decideAuth({ listener: "attribute", username: user.uid, password: user.password })).toMatchObject({
      verdict: "deny",
      reason: "unsupported-password-scheme",
    });
    expect(
      await api.decideAuth({ listener: "attribute-plain", username: user.uid, password: user.password }),
    ).toMatchObject({ verdict: "allow" });
    expect(
      await api.decideAuth({ listener: "attribute-plain", username: user.uid, password: "plain-passwordx" }),
    ).toMatchObject({ verdict: "deny" });
  });

  it("denies an empty password before reading the attribute", async () => {
    proxy.reset();
    expect(await api.decideAuth({ listener: "attribute", username: "ssha-user", password: "" })).toMatchObject({
      reason: "empty-password",
    });
    expect(proxy.bytesToServer).toBe(0);
  });
});

describe("decision log", () => {
  it("writes one JSON line per decision with the reason and never a password", async () => {
    const before = api.logs.length;
    await api.decideAuth({ username: "alice", password: "a-distinctive-wrong-password" });
    const lines = api.logs.slice(before);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      msg: "decision",
      kind: "auth",
      reason: "invalid-credentials",
      verdict: "deny",
      user: "alice",
      listener: "submission",
      clientIp: "192.0.2.25",
    });
    const everything = JSON.stringify(api.logs);
    expect(everything).not.toContain("a-distinctive-wrong-password");
    expect(everything).not.toContain(alice.password);
    expect(everything).not.toContain(SEED.servicePassword);
  });
});
