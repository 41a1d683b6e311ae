import { describe, expect, it } from "vitest";
import type { BindOutcome, Directory, DirectoryEntry, DirectoryResult, SearchRequest } from "./directory.ts";
import { decideSmtpAuth, type SmtpAuthContext, type SmtpAuthQuery } from "./smtp-auth.ts";

/** A directory made of plain data that records every call: the pure core needs no network. */
class FakeDirectory implements Directory {
  calls: string[] = [];
  searches: SearchRequest[] = [];
  down = false;
  readonly entries: Record<string, DirectoryEntry[]>;
  readonly passwords: Record<string, string>;

  constructor(entries: Record<string, DirectoryEntry[]>, passwords: Record<string, string>) {
    this.entries = entries;
    this.passwords = passwords;
  }

  async search(request: SearchRequest): Promise<DirectoryResult<DirectoryEntry[]>> {
    this.searches.push(request);
    if (request.scope === "base") {
      // A read of one entry by its DN: every entry the fake knows, whichever filter lists it.
      this.calls.push(`read ${request.baseDn}`);
      if (this.down) return { ok: false, error: { kind: "unavailable", detail: "down" } };
      const entry = Object.values(this.entries)
        .flat()
        .find((known) => known.dn === request.baseDn && Object.keys(known.attributes).length > 0);
      return { ok: true, value: entry ? [entry] : [] };
    }
    this.calls.push(`search ${request.filter}`);
    if (this.down) return { ok: false, error: { kind: "unavailable", detail: "down" } };
    return { ok: true, value: (this.entries[request.filter] ?? []).slice(0, request.sizeLimit) };
  }

  async bindAsUser(dn: string, password: string): Promise<DirectoryResult<BindOutcome>> {
    this.calls.push(`bind ${dn}`);
    if (this.down) return { ok: false, error: { kind: "unavailable", detail: "down" } };
    return {
      ok: true,
      value: this.passwords[dn] === password ? { bound: true } : { bound: false, resultCode: 49, message: "invalid" },
    };
  }

  async probe() {
    return { ok: true as const, value: { host: "fake" } };
  }

  async close() {}
}

const ALICE = "uid=alice,ou=people,dc=example,dc=com";
const ALICE_ATTRIBUTES = { uid: ["alice"], mail: ["alice@Example.COM"] };
const NOID = "cn=noid,ou=people,dc=example,dc=com";
const TWOIDS = "uid=twoids,ou=people,dc=example,dc=com";
const query: SmtpAuthQuery = {
  baseDn: "dc=example,dc=com",
  filter: "(uid={u})",
  userIdAttribute: "uid",
  addressAttributes: ["mail"],
  method: "bind",
  passwordAttribute: "userPassword",
  allowPlaintextPasswords: false,
  allowance: { baseDn: "dc=example,dc=com", filter: "(&(uid={u})(memberOf=cn=smtp-users,dc=example,dc=com))" },
};

function setup(overrides: Partial<SmtpAuthContext> = {}) {
  const directory = new FakeDirectory(
    {
      "(uid=alice)": [{ dn: ALICE, attributes: ALICE_ATTRIBUTES }],
      // The directory's equality match ignores case and surrounding spaces; the fake lists what it would find.
      "(uid=ALICE)": [{ dn: ALICE, attributes: ALICE_ATTRIBUTES }],
      "(uid= alice)": [{ dn: ALICE, attributes: ALICE_ATTRIBUTES }],
      "(uid=bob)": [{ dn: "uid=bob,ou=people,dc=example,dc=com", attributes: { uid: ["bob"] } }],
      "(uid=dup)": [
        { dn: "uid=dup,ou=people,dc=example,dc=com", attributes: { uid: ["dup"] } },
        { dn: "uid=dup,ou=contractors,dc=example,dc=com", attributes: { uid: ["dup"] } },
      ],
      "(uid=noid)": [{ dn: NOID, attributes: {} }],
      "(uid=twoids)": [{ dn: TWOIDS, attributes: { uid: ["twoids", "other"] } }],
      "(&(uid=alice)(memberOf=cn=smtp-users,dc=example,dc=com))": [{ dn: ALICE, attributes: {} }],
    },
    {
      [ALICE]: "alice-password",
      "uid=bob,ou=people,dc=example,dc=com": "bob-password",
      [NOID]: "noid-password",
      [TWOIDS]: "twoids-password",
    },
  );
  const context: SmtpAuthContext = {
    profile: "corp",
    query,
    onAllowanceFailure: "reject",
    directory,
    now: new Date(0),
    ...overrides,
  };
  return { directory, context };
}

describe("SMTP AUTH decision (flow B)", () => {
  it("allows a user whose bind and allowance succeed", async () => {
    const { directory, context } = setup();
    const decision = await decideSmtpAuth({ username: "alice", password: "alice-password" }, context);
    expect(decision).toMatchObject({
      verdict: "allow",
      authenticated: true,
      identity: "alice",
      dn: ALICE,
      reason: "ok",
      temporary: false,
      method: "ldap-bind",
    });
    expect(decision.smtp).toEqual({ code: 235, enhanced: "2.7.0", text: "Authentication succeeded" });
    expect(directory.calls).toEqual([
      "search (uid=alice)",
      `bind ${ALICE}`,
      "search (&(uid=alice)(memberOf=cn=smtp-users,dc=example,dc=com))",
    ]);
  });

  it("denies an empty password without any directory call", async () => {
    const { directory, context } = setup();
    const decision = await decideSmtpAuth({ username: "alice", password: "" }, context);
    expect(decision).toMatchObject({
      verdict: "deny",
      reason: "empty-password",
      smtp: { code: 535, enhanced: "5.7.8" },
    });
    expect(directory.calls).toEqual([]);
  });

  it.each([
    ["", "empty"],
    ["a\u0000b", "NUL"],
    ["a\nb", "newline"],
    ["x".repeat(10_000), "10 kB"],
  ])("denies a malformed user name (%s) without any directory call: %s", async (username) => {
    const { directory, context } = setup();
    const decision = await decideSmtpAuth({ username, password: "pw" }, context);
    expect(decision).toMatchObject({ verdict: "deny", reason: "malformed-username", smtp: { code: 535 } });
    expect(directory.calls).toEqual([]);
  });

  it("escapes the user name in the filter", async () => {
    const { directory, context } = setup();
    const decision = await decideSmtpAuth({ username: "*)(uid=*))(|(uid=*", password: "pw" }, context);
    expect(decision.reason).toBe("no-such-user");
    expect(directory.calls).toEqual(["search (uid=\\2a\\29\\28uid=\\2a\\29\\29\\28|\\28uid=\\2a)"]);
  });

  it("denies an unknown user, an ambiguous user and a wrong password with the same SMTP reply", async () => {
    const { context } = setup();
    const unknown = await decideSmtpAuth({ username: "mallory", password: "pw" }, context);
    const ambiguous = await decideSmtpAuth({ username: "dup", password: "pw" }, context);
    const wrong = await decideSmtpAuth({ username: "alice", password: "nope" }, context);
    expect([unknown.reason, ambiguous.reason, wrong.reason]).toEqual([
      "no-such-user",
      "ambiguous-user",
      "invalid-credentials",
    ]);
    expect(new Set([unknown.smtp, ambiguous.smtp, wrong.smtp]).size).toBe(1);
    expect(wrong.smtp?.code).toBe(535);
  });

  it("asks for at most two entries, enough to tell one from many", async () => {
    const { directory, context } = setup();
    await decideSmtpAuth({ username: "dup", password: "pw" }, context);
    expect(directory.searches[0]?.sizeLimit).toBe(2);
  });

  it("follows the listener when the allowance query finds nothing", async () => {
    const rejecting = setup();
    expect(await decideSmtpAuth({ username: "bob", password: "bob-password" }, rejecting.context)).toMatchObject({
      verdict: "deny",
      reason: "allowance-failed",
      smtp: { code: 535 },
    });
    const temporary = setup({ onAllowanceFailure: "allow-temporarily" });
    expect(await decideSmtpAuth({ username: "bob", password: "bob-password" }, temporary.context)).toMatchObject({
      verdict: "allow",
      authenticated: true,
      temporary: true,
      reason: "allowance-failed",
      smtp: { code: 235 },
    });
  });

  it("is a temporary failure when the directory cannot answer, never an accept", async () => {
    const { directory, context } = setup();
    directory.down = true;
    const decision = await decideSmtpAuth({ username: "alice", password: "alice-password" }, context);
    expect(decision).toMatchObject({ verdict: "tempfail", authenticated: false, reason: "directory-unavailable" });
    expect(decision.smtp).toEqual({ code: 454, enhanced: "4.7.0", text: "Temporary authentication failure" });
  });

  it("refuses an authorization identity other than the user, whatever the password, without a bind", async () => {
    const { directory, context } = setup();
    for (const password of ["alice-password", "wrong"])
      expect((await decideSmtpAuth({ username: "alice", password, authzid: "bob" }, context)).reason).toBe(
        "authzid-not-permitted",
      );
    expect(directory.calls.some((call) => call.startsWith("bind"))).toBe(false);
    expect(
      (await decideSmtpAuth({ username: "alice", password: "alice-password", authzid: "al\u0000ice" }, context)).reason,
    ).toBe("authzid-not-permitted");
    expect(
      (await decideSmtpAuth({ username: "alice", password: "alice-password", authzid: "alice" }, context)).verdict,
    ).toBe("allow");
  });

  it("takes the entry's identity as the user's own authorization identity, as typed or not", async () => {
    const { context } = setup();
    const asTyped = { username: "ALICE", password: "alice-password" };
    for (const authzid of ["ALICE", "alice"])
      expect(await decideSmtpAuth({ ...asTyped, authzid }, context)).toMatchObject({
        verdict: "allow",
        identity: "alice",
      });
    expect((await decideSmtpAuth({ ...asTyped, authzid: "Alice" }, context)).reason).toBe("authzid-not-permitted");
  });

  it("fails closed when a token has no value", async () => {
    const { directory, context } = setup({ query: { ...query, filter: "(mail={a})" } });
    expect((await decideSmtpAuth({ username: "alice", password: "alice-password" }, context)).reason).toBe(
      "no-such-user",
    );
    expect(directory.calls).toEqual([]);
  });

  it("denies, even where the listener allows temporarily, when an allowance token has no value", async () => {
    const { directory, context } = setup({
      onAllowanceFailure: "allow-temporarily",
      query: { ...query, allowance: { baseDn: "dc=example,dc=com", filter: "(&(uid={u})(mailDomain={d}))" } },
    });
    expect(await decideSmtpAuth({ username: "alice", password: "alice-password" }, context)).toMatchObject({
      verdict: "deny",
      reason: "allowance-failed",
      temporary: false,
    });
    expect(directory.calls).toEqual(["search (uid=alice)", `bind ${ALICE}`]);
  });

  it("passes {dn} of the authenticated entry, escaped, to the allowance query", async () => {
    const { directory, context } = setup({
      query: { ...query, allowance: { baseDn: "ou=groups", filter: "(member={dn})" } },
    });
    await decideSmtpAuth({ username: "alice", password: "alice-password" }, context);
    expect(directory.calls.at(-1)).toBe(`search (member=${ALICE})`);
  });

  it.each(["ALICE", " alice"])(
    "names the entry's uid, not the name as typed (%j), and asks the allowance with it",
    async (typed) => {
      const { directory, context } = setup();
      const decision = await decideSmtpAuth({ username: typed, password: "alice-password" }, context);
      expect(decision).toMatchObject({ verdict: "allow", identity: "alice", addresses: ["alice@example.com"] });
      expect(directory.calls.at(-1)).toBe("search (&(uid=alice)(memberOf=cn=smtp-users,dc=example,dc=com))");
      expect(directory.searches[0]?.attributes).toEqual(["uid", "mail"]);
    },
  );

  it("refuses an entry without the user ID attribute, or with several values, before checking the password", async () => {
    const { directory, context } = setup();
    expect(await decideSmtpAuth({ username: "noid", password: "noid-password" }, context)).toMatchObject({
      verdict: "deny",
      reason: "no-such-user",
      dn: NOID,
      detail: `${NOID} has no uid (the user ID attribute)`,
    });
    expect(await decideSmtpAuth({ username: "twoids", password: "twoids-password" }, context)).toMatchObject({
      verdict: "deny",
      reason: "ambiguous-user",
      detail: `${TWOIDS} has 2 uid values; the user ID attribute must have one`,
    });
    expect(directory.calls.filter((call) => call.startsWith("bind"))).toEqual([]);
  });

  it("carries no addresses when the query names no address attribute", async () => {
    const { context } = setup({ query: { ...query, addressAttributes: [] } });
    expect((await decideSmtpAuth({ username: "alice", password: "alice-password" }, context)).addresses).toBeNull();
  });

  it("puts the filled filter and base of the last query on a deny", async () => {
    const { context } = setup();
    expect((await decideSmtpAuth({ username: "mallory", password: "pw" }, context)).query).toEqual({
      baseDn: "dc=example,dc=com",
      filter: "(uid=mallory)",
    });
    expect((await decideSmtpAuth({ username: "bob", password: "bob-password" }, context)).query).toEqual({
      baseDn: "dc=example,dc=com",
      filter: "(&(uid=bob)(memberOf=cn=smtp-users,dc=example,dc=com))",
    });
  });
});

describe("SMTP AUTH decision by a DN template (flow B without the search)", () => {
  const direct = { ...query, bindDnTemplate: "uid={u},ou=people,dc=example,dc=com" };
  const GROUP_SEARCH = "search (&(uid=alice)(memberOf=cn=smtp-users,dc=example,dc=com))";

  it("refuses another authorization identity after the bind, so a wrong password still counts as one", async () => {
    const { context } = setup({ query: direct });
    expect((await decideSmtpAuth({ username: "alice", password: "wrong", authzid: "bob" }, context)).reason).toBe(
      "invalid-credentials",
    );
    expect(
      (await decideSmtpAuth({ username: "alice", password: "alice-password", authzid: "bob" }, context)).reason,
    ).toBe("authzid-not-permitted");
  });

  it("binds and reads the entry at once, then the allowance query; the identity is the entry's", async () => {
    const { directory, context } = setup({ query: direct });
    const decision = await decideSmtpAuth({ username: "alice", password: "alice-password" }, context);
    expect(decision).toMatchObject({
      verdict: "allow",
      identity: "alice",
      dn: ALICE,
      method: "ldap-bind",
      addresses: ["alice@example.com"],
    });
    // Both sent before either answered; the allowance query follows the read.
    expect(directory.calls).toEqual([`read ${ALICE}`, `bind ${ALICE}`, GROUP_SEARCH]);
    expect(directory.searches[0]).toMatchObject({ scope: "base", attributes: ["uid", "mail"] });
  });

  it("denies a wrong password, even though the allowance query found the user", async () => {
    const { directory, context } = setup({ query: direct });
    expect(await decideSmtpAuth({ username: "alice", password: "wrong" }, context)).toMatchObject({
      verdict: "deny",
      reason: "invalid-credentials",
      identity: null,
    });
    expect(directory.calls).toContain(GROUP_SEARCH);
  });

  it("denies an unknown user as no-such-user", async () => {
    const { context } = setup({ query: direct });
    expect(await decideSmtpAuth({ username: "mallory", password: "pw" }, context)).toMatchObject({
      verdict: "deny",
      reason: "no-such-user",
      query: { baseDn: "uid=mallory,ou=people,dc=example,dc=com", filter: "(objectClass=*)" },
    });
  });

  it("denies when the allowance query finds nothing, allows temporarily where the listener says so", async () => {
    const { context } = setup({ query: direct });
    expect(await decideSmtpAuth({ username: "bob", password: "bob-password" }, context)).toMatchObject({
      verdict: "deny",
      reason: "allowance-failed",
    });
    const lenient = { ...context, onAllowanceFailure: "allow-temporarily" as const };
    expect(await decideSmtpAuth({ username: "bob", password: "bob-password" }, lenient)).toMatchObject({
      verdict: "allow",
      temporary: true,
    });
  });

  it("is a temporary failure when the directory cannot answer, never an accept", async () => {
    const { directory, context } = setup({ query: direct });
    directory.down = true;
    expect(await decideSmtpAuth({ username: "alice", password: "alice-password" }, context)).toMatchObject({
      verdict: "tempfail",
      smtp: { code: 454 },
    });
  });

  it("refuses an entry without the user ID attribute, or with several values, whatever the password", async () => {
    const { context } = setup({ query: { ...direct, bindDnTemplate: "{u},ou=people,dc=example,dc=com" } });
    expect(await decideSmtpAuth({ username: "uid=twoids", password: "twoids-password" }, context)).toMatchObject({
      verdict: "deny",
      reason: "ambiguous-user",
    });
  });

  it("escapes the user name as an RFC 4514 value and sends nothing for an empty password", async () => {
    const { directory, context } = setup({ query: direct });
    await decideSmtpAuth({ username: "alice,ou=admins", password: "pw" }, context);
    expect(directory.calls[0]).toBe("read uid=alice\\,ou=admins,ou=people,dc=example,dc=com");
    directory.calls = [];
    expect(await decideSmtpAuth({ username: "alice", password: "" }, context)).toMatchObject({
      reason: "empty-password",
    });
    expect(directory.calls).toEqual([]);
  });

  it("fails closed without LDAP traffic when a DN token has no value", async () => {
    const { directory, context } = setup({
      query: { ...direct, bindDnTemplate: "mail={a},ou=people,dc=example,dc=com" },
    });
    expect(await decideSmtpAuth({ username: "alice", password: "alice-password" }, context)).toMatchObject({
      verdict: "deny",
      reason: "no-such-user",
    });
    expect(directory.calls).toEqual([]);
  });
});
