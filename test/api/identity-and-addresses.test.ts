// The identity of an allow is the entry's user ID attribute, whatever the client typed, and the verdict carries
// the addresses the entry owns: against a real slapd with mailAlternateAddress and an Active Directory-like
// entry (sAMAccountName, proxyAddresses).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_TOKENS_CONFIG, slapdDirectory, startTestApi, type TestApi } from "../../dev/api.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";

/** The attributes of mail systems and Active Directory that the stock OpenLDAP schemas lack (test OID arc). */
const MAIL_SCHEMA = `attributetype ( 1.3.6.1.4.1.55555.3.1.1 NAME 'mailAlternateAddress'
	EQUALITY caseIgnoreIA5Match SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )
attributetype ( 1.3.6.1.4.1.55555.3.1.2 NAME 'proxyAddresses'
	EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.3.6.1.4.1.55555.3.1.3 NAME 'sAMAccountName'
	EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.55555.3.2.1 NAME 'mailAccount' SUP top AUXILIARY
	MAY ( mailAlternateAddress $ proxyAddresses $ sAMAccountName ) )
`;

const PASSWORD = "test-password";
const PEOPLE = SEED.peopleDn;

function ldif(plainPassword: string): string {
  const person = (dn: string, lines: string[]) =>
    [
      `dn: ${dn}`,
      "objectClass: inetOrgPerson",
      "objectClass: mailAccount",
      ...lines,
      `userPassword: ${plainPassword}`,
    ].join("\n");
  return [
    person(`uid=jdoe,${PEOPLE}`, [
      "uid: jdoe",
      "cn: John Doe",
      "sn: Doe",
      "mail: jdoe@corp.test",
      "mailAlternateAddress: John.Doe@Corp.TEST",
      "mailAlternateAddress: jdoe@CORP.test",
    ]),
    person(`cn=Anne Smith,${PEOPLE}`, [
      "cn: Anne Smith",
      "sn: Smith",
      "sAMAccountName: ASmith",
      "proxyAddresses: SMTP:Anne.Smith@Corp.Test",
      "proxyAddresses: smtp:asmith@corp.test",
      "proxyAddresses: X500:/o=Corp/ou=Exchange/cn=Recipients/cn=asmith",
      "proxyAddresses: sip:asmith@corp.test",
    ]),
    person(`cn=No Uid,${PEOPLE}`, ["cn: No Uid", "sn: Uid", "mail: nouid@corp.test"]),
    person(`uid=twoids,${PEOPLE}`, ["uid: twoids", "uid: twoids-alias", "cn: Two Ids", "sn: Ids"]),
  ].join("\n\n");
}

let slapd: SlapdInstance;
let api: TestApi;

beforeAll(async () => {
  // Plain-text passwords are fine for entries that exist only in this test's throw-away directory.
  slapd = await startSlapd({ extraSchema: MAIL_SCHEMA, extraLdif: ldif(PASSWORD) });
  const gate = `(&(uid={u})(memberOf=${SEED.smtpUsersGroupDn}))`;
  api = await startTestApi(
    {
      directories: {
        corp: slapdDirectory(slapd),
      },
      smtpAuthQueries: {
        uid: { directory: "corp" },
        "uid-or-mail": {
          directory: "corp",
          filter: "(|(uid={u})(mail={u}))",
          addressAttributes: ["mail", "mailAlternateAddress"],
        },
        gated: { directory: "corp", filter: "(|(uid={u})(mail={u}))", allowance: { filter: gate } },
        ad: {
          directory: "corp",
          filter: "(sAMAccountName={u})",
          userIdAttribute: "sAMAccountName",
          addressAttributes: ["proxyAddresses"],
        },
        "no-addresses": { directory: "corp", addressAttributes: [] },
        "by-mail": { directory: "corp", filter: "(mail={u})" },
      },
      authProfiles: {
        uid: { type: "ldap", query: "uid", cache: { positiveTtlSeconds: 60 } },
        "uid-or-mail": { type: "ldap", query: "uid-or-mail" },
        gated: { type: "ldap", query: "gated" },
        ad: { type: "ldap", query: "ad" },
        "no-addresses": { type: "ldap", query: "no-addresses" },
        "by-mail": { type: "ldap", query: "by-mail" },
      },
      listeners: {
        submission: { authProfile: "uid" },
        "uid-or-mail": { authProfile: "uid-or-mail" },
        gated: { authProfile: "gated" },
        ad: { authProfile: "ad" },
        "no-addresses": { authProfile: "no-addresses" },
        "by-mail": { authProfile: "by-mail" },
      },
      api: API_TOKENS_CONFIG,
    },
    { BIND_PW: SEED.servicePassword },
  );
});

afterAll(async () => {
  await api?.close();
  await slapd?.close();
});

const { alice } = SEED.users;

describe("the identity of an allow", () => {
  it.each(["ALICE", " alice", "alice "])("is alice for %j, and the log line keeps the name as given", async (typed) => {
    expect(await api.decideAuth({ username: typed, password: alice.password })).toMatchObject({
      verdict: "allow",
      identity: "alice",
      dn: alice.dn,
    });
    expect(api.logs.findLast((record) => record.msg === "decision")).toMatchObject({ user: typed, identity: "alice" });
  });

  it("is the uid for a login by mail address under (|(uid={u})(mail={u}))", async () => {
    expect(
      await api.decideAuth({ listener: "uid-or-mail", username: "jdoe@corp.test", password: PASSWORD }),
    ).toMatchObject({ verdict: "allow", identity: "jdoe" });
  });

  it("fills the allowance query's {u} with it: alice by her address passes the group gate", async () => {
    expect(
      await api.decideAuth({ listener: "gated", username: "alice@example.com", password: alice.password }),
    ).toMatchObject({ verdict: "allow", identity: "alice" });
  });

  it("is sAMAccountName's value in an Active Directory-like query", async () => {
    expect(await api.decideAuth({ listener: "ad", username: "asmith", password: PASSWORD })).toMatchObject({
      verdict: "allow",
      identity: "ASmith",
    });
  });

  it("comes from a cached allow unchanged: the cache keys the name as typed, the decision names the entry", async () => {
    await api.decideAuth({ username: "Alice", password: alice.password });
    expect(await api.decideAuth({ username: "Alice", password: alice.password })).toMatchObject({
      identity: "alice",
    });
    expect(api.logs.findLast((record) => record.msg === "decision")).toMatchObject({ cache: "hit", user: "Alice" });
  });

  it("is refused when the entry has no user ID attribute, or several values, whatever the password", async () => {
    expect(
      await api.decideAuth({ listener: "by-mail", username: "nouid@corp.test", password: PASSWORD }),
    ).toMatchObject({ verdict: "deny", reason: "no-such-user", smtp: { code: 535 } });
    expect(api.logs.findLast((record) => record.msg === "decision")?.detail).toBe(
      `cn=No Uid,${PEOPLE} has no uid (the user ID attribute)`,
    );
    expect(await api.decideAuth({ username: "twoids", password: PASSWORD })).toMatchObject({
      verdict: "deny",
      reason: "ambiguous-user",
    });
  });
});

describe("the addresses of an allow", () => {
  it("are the entry's mail values by default", async () => {
    expect(await api.decideAuth({ username: "alice", password: alice.password })).toMatchObject({
      addresses: [alice.mail],
    });
  });

  it("gather every configured attribute, with lower-cased domains and no duplicates", async () => {
    expect(await api.decideAuth({ listener: "uid-or-mail", username: "jdoe", password: PASSWORD })).toMatchObject({
      addresses: ["jdoe@corp.test", "John.Doe@corp.test"],
    });
  });

  it("keep only the smtp: values of proxyAddresses, prefix removed", async () => {
    expect(await api.decideAuth({ listener: "ad", username: "ASMITH", password: PASSWORD })).toMatchObject({
      addresses: ["Anne.Smith@corp.test", "asmith@corp.test"],
    });
  });

  it("are null when the query names no address attribute, and with a deny", async () => {
    expect(
      await api.decideAuth({ listener: "no-addresses", username: "alice", password: alice.password }),
    ).toMatchObject({ verdict: "allow", addresses: null });
    expect(await api.decideAuth({ username: "alice", password: "wrong" })).toMatchObject({
      verdict: "deny",
      addresses: null,
    });
  });
});
