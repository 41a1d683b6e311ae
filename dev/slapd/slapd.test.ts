// Proves the slapd harness: seed data, binds, TLS (StartTLS, ldaps, wrong CA), memberOf, restarts and the
// unauthenticated-bind pitfall (a DN with an empty password), all through ldapts like the product uses.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client, InvalidCredentialsError, UnwillingToPerformError } from "ldapts";
import type { ClientOptions } from "ldapts";
import { PASSWORD_SCHEMES, SEED, startSlapd, withMemberOf } from "./index.ts";
import type { SlapdInstance } from "./index.ts";
import { freePort } from "../ports.ts";

async function withClient<T>(options: ClientOptions, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ timeout: 5_000, connectTimeout: 5_000, ...options });
  try {
    return await fn(client);
  } finally {
    await client.unbind().catch(() => undefined);
  }
}

async function searchDns(url: string, filter: string, bind?: [string, string]): Promise<string[]> {
  return withClient({ url }, async (client) => {
    if (bind) await client.bind(...bind);
    const { searchEntries } = await client.search(SEED.baseDn, { scope: "sub", filter, attributes: ["1.1"] });
    return searchEntries.map((e) => e.dn).sort();
  });
}

/** ldapts lists a requested attribute the server did not return as an empty array. */
function absent(value: unknown): boolean {
  return value === undefined || (Array.isArray(value) && value.length === 0);
}

describe("slapd harness", () => {
  let slapd: SlapdInstance;

  beforeAll(async () => {
    slapd = await startSlapd();
  });
  afterAll(async () => {
    await slapd?.close();
  });

  it("exposes the instance facts", () => {
    expect(slapd.ldapUrl).toBe(`ldap://127.0.0.1:${slapd.ports.ldap}`);
    expect(slapd.ldapsUrl).toBe(`ldaps://127.0.0.1:${slapd.ports.ldaps}`);
    expect(slapd.baseDn).toBe("dc=example,dc=com");
    expect(slapd.serviceDn).toBe("cn=smtpgate,ou=services,dc=example,dc=com");
    expect(slapd.pki.caPem).toContain("BEGIN CERTIFICATE");
    expect(slapd.pki.otherCaPem).not.toBe(slapd.pki.caPem);
    expect(slapd.running).toBe(true);
  });

  it("alice binds with her password over ldap://, and not with a wrong one", async () => {
    const { alice } = SEED.users;
    await withClient({ url: slapd.ldapUrl }, (c) => c.bind(alice.dn, alice.password));
    await expect(withClient({ url: slapd.ldapUrl }, (c) => c.bind(alice.dn, "wrong"))).rejects.toBeInstanceOf(
      InvalidCredentialsError,
    );
  });

  it("the rootdn and the service account bind", async () => {
    await withClient({ url: slapd.ldapUrl }, (c) => c.bind(slapd.adminDn, slapd.adminPassword));
    await withClient({ url: slapd.ldapUrl }, (c) => c.bind(slapd.serviceDn, slapd.servicePassword));
  });

  it("StartTLS trusting the test CA works", async () => {
    await withClient({ url: slapd.ldapUrl }, async (c) => {
      await c.startTLS({ ca: [slapd.pki.caPem], servername: "localhost" });
      await c.bind(SEED.users.bob.dn, SEED.users.bob.password);
    });
  });

  it("StartTLS trusting only the other CA fails", async () => {
    await expect(
      withClient({ url: slapd.ldapUrl }, (c) => c.startTLS({ ca: [slapd.pki.otherCaPem], servername: "localhost" })),
    ).rejects.toThrow();
  });

  it("ldaps:// trusting the test CA works (IP SAN, no servername)", async () => {
    await withClient({ url: slapd.ldapsUrl, tlsOptions: { ca: [slapd.pki.caPem] } }, (c) =>
      c.bind(SEED.users.alice.dn, SEED.users.alice.password),
    );
  });

  it("ldaps:// trusting only the other CA fails", async () => {
    await expect(
      withClient({ url: slapd.ldapsUrl, tlsOptions: { ca: [slapd.pki.otherCaPem] } }, (c) =>
        c.bind(SEED.users.alice.dn, SEED.users.alice.password),
      ),
    ).rejects.toThrow(/certificate|issuer/i);
  });

  it("(memberOf=cn=smtp-users,...) finds alice only", async () => {
    expect(await searchDns(slapd.ldapUrl, `(memberOf=${SEED.smtpUsersGroupDn})`)).toEqual([SEED.users.alice.dn]);
    // also for the service identity, and combined with uid as a gate would search
    expect(
      await searchDns(slapd.ldapUrl, `(&(uid=alice)(memberOf=${SEED.smtpUsersGroupDn}))`, [
        slapd.serviceDn,
        slapd.servicePassword,
      ]),
    ).toEqual([SEED.users.alice.dn]);
    expect(await searchDns(slapd.ldapUrl, `(&(uid=bob)(memberOf=${SEED.smtpUsersGroupDn}))`)).toEqual([]);
  });

  it("(uid=dup) finds two entries", async () => {
    expect(await searchDns(slapd.ldapUrl, "(uid=dup)")).toEqual([...SEED.dupDns].sort());
    expect(await searchDns(slapd.ldapUrl, "(mail=dup@example.com)")).toHaveLength(2);
  });

  it("anonymous searches see mail but not userPassword", async () => {
    await withClient({ url: slapd.ldapUrl }, async (c) => {
      const { searchEntries } = await c.search(SEED.baseDn, {
        filter: "(uid=alice)",
        attributes: ["mail", "userPassword"],
      });
      expect(searchEntries).toHaveLength(1);
      expect(searchEntries[0]?.mail).toBe("alice@example.com");
      expect(absent(searchEntries[0]?.userPassword)).toBe(true);
    });
  });

  it("the service account reads userPassword, stored as {SSHA} for ssha-user", async () => {
    await withClient({ url: slapd.ldapUrl }, async (c) => {
      await c.bind(slapd.serviceDn, slapd.servicePassword);
      const { searchEntries } = await c.search(SEED.users["ssha-user"].dn, {
        scope: "base",
        attributes: ["userPassword"],
      });
      const value = searchEntries[0]?.userPassword;
      expect(typeof value).toBe("string");
      expect(String(value)).toMatch(/^\{SSHA\}/);
    });
  });

  it("userPassword of every scheme user is stored in its scheme", async () => {
    await withClient({ url: slapd.ldapUrl }, async (c) => {
      await c.bind(slapd.serviceDn, slapd.servicePassword);
      for (const scheme of PASSWORD_SCHEMES) {
        const user = SEED.users[`${scheme}-user`];
        const { searchEntries } = await c.search(user.dn, { scope: "base", attributes: ["userPassword"] });
        const value = String(searchEntries[0]?.userPassword);
        if (scheme === "plain") expect(value).toBe("plain-password");
        else expect(value.startsWith(`{${scheme.toUpperCase()}}`)).toBe(true);
      }
    });
  });

  it.each(PASSWORD_SCHEMES)("%s-user binds with its password (and not with another)", async (scheme) => {
    const user = SEED.users[`${scheme}-user`];
    expect(user.password).toBe(`${scheme}-password`);
    await withClient({ url: slapd.ldapUrl }, (c) => c.bind(user.dn, user.password));
    await expect(withClient({ url: slapd.ldapUrl }, (c) => c.bind(user.dn, "nope"))).rejects.toBeInstanceOf(
      InvalidCredentialsError,
    );
  });

  it("both dup entries bind with dup-password", async () => {
    for (const dn of SEED.dupDns) await withClient({ url: slapd.ldapUrl }, (c) => c.bind(dn, "dup-password"));
  });

  it("without allow bind_anon_dn, a DN with an empty password is refused", async () => {
    const bind = withClient({ url: slapd.ldapUrl }, (c) => c.bind(SEED.users.alice.dn, ""));
    await expect(bind).rejects.toBeInstanceOf(UnwillingToPerformError);
    await expect(bind).rejects.toThrow(/unauthenticated bind/);
  });

  it("stop() then start() comes back on the same ports with the same data", async () => {
    const ports = { ...slapd.ports };
    await slapd.stop();
    expect(slapd.running).toBe(false);
    await expect(
      withClient({ url: slapd.ldapUrl, connectTimeout: 1_000 }, (c) => c.bind(SEED.users.alice.dn, "alice-password")),
    ).rejects.toThrow();
    await slapd.stop(); // idempotent
    await slapd.start();
    expect(slapd.running).toBe(true);
    expect(slapd.ports).toEqual(ports);
    await withClient({ url: slapd.ldapUrl }, (c) => c.bind(SEED.users.alice.dn, SEED.users.alice.password));
    await withClient({ url: slapd.ldapsUrl, tlsOptions: { ca: [slapd.pki.caPem] } }, (c) =>
      c.bind(SEED.users.bob.dn, SEED.users.bob.password),
    );
    expect(await searchDns(slapd.ldapUrl, `(memberOf=${SEED.smtpUsersGroupDn})`)).toEqual([SEED.users.alice.dn]);
  });
});

describe("slapd harness options", () => {
  const instances: SlapdInstance[] = [];
  afterAll(async () => {
    await Promise.all(instances.map((i) => i.close()));
  });
  const start = async (...args: Parameters<typeof startSlapd>): Promise<SlapdInstance> => {
    const instance = await startSlapd(...args);
    instances.push(instance);
    return instance;
  };

  it("allowBindAnonDn: a DN with an empty password 'binds' (anonymously): the unauthenticated-bind pitfall", async () => {
    const slapd = await start({ allowBindAnonDn: true });
    await withClient({ url: slapd.ldapUrl }, async (c) => {
      await c.bind(SEED.users.alice.dn, "");
      // ...but the connection is anonymous: userPassword stays hidden, which alice herself could read
      const { searchEntries } = await c.search(SEED.users.alice.dn, { scope: "base", attributes: ["userPassword"] });
      expect(absent(searchEntries[0]?.userPassword)).toBe(true);
    });
    // the same search after a real bind as alice does show it (so the check above means something)
    await withClient({ url: slapd.ldapUrl }, async (c) => {
      await c.bind(SEED.users.alice.dn, SEED.users.alice.password);
      const { searchEntries } = await c.search(SEED.users.alice.dn, { scope: "base", attributes: ["userPassword"] });
      expect(String(searchEntries[0]?.userPassword)).toMatch(/^\{SSHA\}/);
    });
    // a wrong non-empty password still fails
    await expect(
      withClient({ url: slapd.ldapUrl }, (c) => c.bind(SEED.users.alice.dn, "wrong")),
    ).rejects.toBeInstanceOf(InvalidCredentialsError);
  });

  it('serverCert "other": the other CA verifies, the test CA does not', async () => {
    const slapd = await start({ serverCert: "other" });
    await withClient({ url: slapd.ldapsUrl, tlsOptions: { ca: [slapd.pki.otherCaPem] } }, (c) =>
      c.bind(SEED.users.alice.dn, SEED.users.alice.password),
    );
    await expect(
      withClient({ url: slapd.ldapsUrl, tlsOptions: { ca: [slapd.pki.caPem] } }, (c) =>
        c.bind(SEED.users.alice.dn, SEED.users.alice.password),
      ),
    ).rejects.toThrow(/certificate|issuer/i);
  });

  it("extraLdif entries are loaded, with memberOf for their groups; ports can be chosen", async () => {
    const ports = { ldap: await freePort(), ldaps: await freePort() };
    const extraLdif = [
      "dn: uid=carol,ou=people,dc=example,dc=com",
      "objectClass: inetOrgPerson",
      "uid: carol",
      "cn: carol",
      "sn: carol",
      "mail: carol@example.com",
      "userPassword: carol-password",
      "",
      "dn: cn=relay-users,ou=groups,dc=example,dc=com",
      "objectClass: groupOfNames",
      "cn: relay-users",
      "member: uid=carol,ou=people,dc=example,dc=com",
      "member: uid=bob,ou=people,dc=example,dc=com",
      "",
    ].join("\n");
    const slapd = await start({ extraLdif, ports });
    expect(slapd.ports).toEqual(ports);
    await withClient({ url: slapd.ldapUrl }, (c) => c.bind("uid=carol,ou=people,dc=example,dc=com", "carol-password"));
    expect(await searchDns(slapd.ldapUrl, "(memberOf=cn=relay-users,ou=groups,dc=example,dc=com)")).toEqual([
      "uid=bob,ou=people,dc=example,dc=com",
      "uid=carol,ou=people,dc=example,dc=com",
    ]);
    expect(await searchDns(slapd.ldapUrl, `(memberOf=${SEED.smtpUsersGroupDn})`)).toEqual([SEED.users.alice.dn]);
  });

  it("dataFrom copies another instance's database", async () => {
    const source = await start({
      extraLdif: "dn: uid=copied,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: copied\ncn: c\nsn: c\n",
    });
    await source.stop();
    const copy = await start({ dataFrom: source.dir });
    expect(await searchDns(copy.ldapUrl, "(uid=copied)")).toEqual(["uid=copied,ou=people,dc=example,dc=com"]);
  });

  it("close() is idempotent and start() after close() is refused", async () => {
    const slapd = await start();
    await slapd.close();
    await slapd.close();
    await expect(slapd.start()).rejects.toThrow(/closed/);
  });
});

describe("withMemberOf", () => {
  it("adds memberOf to the members of groups, handling folded and base64 values", () => {
    const ldif = [
      "dn: uid=x,ou=people,dc=example,dc=com",
      "uid: x",
      "",
      "dn: cn=g,ou=groups,dc=example,dc=com",
      "objectClass: groupOfNames",
      `member:: ${Buffer.from("uid=x, ou=people,dc=example,dc=com").toString("base64")}`,
      "",
      "dn: cn=h,ou=groups,dc=exa",
      " mple,dc=com",
      "member: UID=x,ou=people,dc=example,dc=com",
    ].join("\n");
    expect(withMemberOf(ldif)).toContain(
      "uid: x\nmemberOf: cn=g,ou=groups,dc=example,dc=com\nmemberOf: cn=h,ou=groups,dc=example,dc=com\n",
    );
  });
});
