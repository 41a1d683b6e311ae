// The decision cache as the gate uses it: which decisions are kept, for which inputs, and when a stale allow may
// stand in for a tempfail. A directory made of plain data and a clock moved by hand; the real slapd runs in
// test/api/decision-cache.test.ts.
import { beforeAll, describe, expect, it } from "vitest";
import { generateClientPki, type ClientPki } from "../../dev/client-pki/index.ts";
import { validateConfig } from "../config/load.ts";
import type { ConfigInput } from "../config/schema.ts";
import { parseTrustAnchors } from "../pki/certificate-chain.ts";
import type { BindOutcome, Directory, DirectoryEntry, DirectoryResult, SearchRequest } from "../core/directory.ts";
import { Gate, type AuthRequest } from "./gate.ts";
import type { Decision } from "../core/verdict.ts";

const BASE = "dc=example,dc=com";
const dnOf = (uid: string): string => `uid=${uid},ou=people,${BASE}`;
const GROUP = `cn=smtp-users,ou=groups,${BASE}`;
const SHARED = "the-same-password";

/** alice and bob share a password; only alice is in smtp-users. */
class FakeDirectory implements Directory {
  down = false;
  operations = 0;
  passwords: Record<string, string> = { [dnOf("alice")]: SHARED, [dnOf("bob")]: SHARED };
  readonly entries: Record<string, DirectoryEntry[]> = {
    "(uid=alice)": [{ dn: dnOf("alice"), attributes: { uid: ["alice"] } }],
    "(uid=bob)": [{ dn: dnOf("bob"), attributes: { uid: ["bob"] } }],
    [`(&(uid=alice)(memberOf=${GROUP}))`]: [{ dn: dnOf("alice"), attributes: {} }],
    "(cn=alice)": [{ dn: `uid=alice.cert,ou=certs,${BASE}`, attributes: { uid: ["alice.cert"] } }],
  };

  async search(request: SearchRequest): Promise<DirectoryResult<DirectoryEntry[]>> {
    this.operations += 1;
    if (this.down)
      return { ok: false, error: { kind: "unavailable", detail: "directory corp: ldap://fake: ECONNREFUSED" } };
    return { ok: true, value: (this.entries[request.filter] ?? []).slice(0, request.sizeLimit) };
  }

  async bindAsUser(dn: string, password: string): Promise<DirectoryResult<BindOutcome>> {
    this.operations += 1;
    if (this.down)
      return { ok: false, error: { kind: "unavailable", detail: "directory corp: ldap://fake: ECONNREFUSED" } };
    return {
      ok: true,
      value:
        this.passwords[dn] === password
          ? { bound: true }
          : { bound: false, resultCode: 49, message: "invalid credentials" },
    };
  }

  async probe() {
    return { ok: true as const, value: { host: "fake" } };
  }

  async close() {}
}

let pki: ClientPki;

beforeAll(async () => {
  pki = await generateClientPki();
});

function setup(cache: Record<string, number>, certificateCache: Record<string, number> = cache) {
  const config: ConfigInput = {
    directories: { corp: { hosts: ["ldaps://ldap.example.com"], baseDn: BASE } },
    smtpAuthQueries: { q: { directory: "corp", allowance: { filter: `(&(uid={u})(memberOf=${GROUP}))` } } },
    certificateQueries: {
      byCn: { directory: "corp", filter: "(cn={cn})" },
      // alice.cert is in no group: this gate refuses her certificate.
      gated: { directory: "corp", filter: "(cn={cn})", allowance: { filter: `(&(uid={u})(memberOf=${GROUP}))` } },
    },
    authProfiles: {
      corp: { type: "ldap", query: "q", cache },
      uncached: { type: "ldap", query: "q" },
      cert: { type: "certificate", query: "byCn", trustAnchors: { pem: pki.rootPem }, cache: certificateCache },
      gated: { type: "certificate", query: "gated", trustAnchors: { pem: pki.rootPem }, cache: certificateCache },
    },
    listeners: {
      submission: { authProfile: "corp" },
      lenient: { authProfile: "corp", onAllowanceFailure: "allow-temporarily" },
      plain: { authProfile: "uncached" },
      cert: { authProfile: "cert" },
      "gated-strict": { authProfile: "gated" },
      "gated-lenient": { authProfile: "gated", onAllowanceFailure: "allow-temporarily" },
    },
    api: { tokens: [{ env: "TOKEN" }] },
  };
  const directory = new FakeDirectory();
  const clock = { now: Date.now() };
  const gate = new Gate({
    config: validateConfig(config, "test"),
    directories: { corp: directory },
    trustAnchors: { cert: parseTrustAnchors(pki.rootPem, "test"), gated: parseTrustAnchors(pki.rootPem, "test") },
    now: () => new Date(clock.now),
  });
  const auth = async (
    username: string,
    password: string,
    listener = "submission",
    extra: Partial<AuthRequest> = {},
  ): Promise<Decision> => {
    const result = await gate.decideAuth({ listener, mechanism: "PLAIN", username, password, ...extra });
    if (!result.ok) throw new Error(result.problem);
    return result.decision;
  };
  const tls = async (chain: string[] | null, listener = "cert"): Promise<Decision> => {
    const result = await gate.decideTls({ listener, certificate: chain === null ? null : { chain } });
    if (!result.ok) throw new Error(result.problem);
    return result.decision;
  };
  const advance = (seconds: number): void => {
    clock.now += seconds * 1000;
  };
  return { gate, directory, auth, tls, clock, advance };
}

const ON = { positiveTtlSeconds: 60, negativeTtlSeconds: 30 };

describe("the gate's SMTP AUTH cache", () => {
  it("answers a repeated allow from the cache, with the same verdict and no directory traffic", async () => {
    const { auth, directory, gate } = setup(ON);
    const first = await auth("alice", SHARED);
    expect(first).toMatchObject({ verdict: "allow", identity: "alice", dn: dnOf("alice"), cache: "miss" });
    const operations = directory.operations;
    const second = await auth("alice", SHARED);
    expect(second).toEqual({ ...first, cache: "hit" });
    expect(directory.operations).toBe(operations);
    expect(gate.cacheStats().corp).toMatchObject({ kind: "auth", enabled: true, hits: 1, misses: 1, entries: 1 });
  });

  it("never answers bob with alice's cached allow, though they share a password (the cross-identity case)", async () => {
    const { auth } = setup(ON);
    expect(await auth("alice", SHARED)).toMatchObject({ verdict: "allow", identity: "alice" });
    const bob = await auth("bob", SHARED);
    expect(bob).toMatchObject({
      verdict: "deny",
      reason: "allowance-failed",
      identity: null,
      dn: dnOf("bob"),
      cache: "miss",
    });
    // Both now cached, each for its own user.
    expect(await auth("alice", SHARED)).toMatchObject({ verdict: "allow", identity: "alice", cache: "hit" });
    expect(await auth("bob", SHARED)).toMatchObject({
      verdict: "deny",
      reason: "allowance-failed",
      identity: null,
      cache: "hit",
    });
  });

  it("never answers another password with a cached allow", async () => {
    const { auth, directory } = setup(ON);
    await auth("alice", SHARED);
    const operations = directory.operations;
    expect(await auth("alice", "not-her-password")).toMatchObject({
      verdict: "deny",
      reason: "invalid-credentials",
      cache: "miss",
    });
    expect(directory.operations).toBeGreaterThan(operations);
    expect(await auth("alice", `${SHARED} `)).toMatchObject({ verdict: "deny", cache: "miss" });
  });

  it("keys on the listener, which decides what an allowance failure means", async () => {
    const { auth } = setup(ON);
    expect(await auth("bob", SHARED, "submission")).toMatchObject({ verdict: "deny", reason: "allowance-failed" });
    expect(await auth("bob", SHARED, "lenient")).toMatchObject({
      verdict: "allow",
      temporary: true,
      identity: "bob",
      cache: "miss",
    });
    expect(await auth("bob", SHARED, "lenient")).toMatchObject({ verdict: "allow", temporary: true, cache: "hit" });
  });

  it("keeps a deny for negativeTtlSeconds, then asks again", async () => {
    const { auth, advance } = setup(ON);
    expect(await auth("alice", "wrong")).toMatchObject({
      verdict: "deny",
      reason: "invalid-credentials",
      cache: "miss",
    });
    advance(29);
    expect(await auth("alice", "wrong")).toMatchObject({
      verdict: "deny",
      reason: "invalid-credentials",
      cache: "hit",
    });
    advance(1);
    expect(await auth("alice", "wrong")).toMatchObject({ verdict: "deny", cache: "miss" });
    expect(await auth("nobody", "whatever")).toMatchObject({ verdict: "deny", reason: "no-such-user", cache: "miss" });
    expect(await auth("nobody", "whatever")).toMatchObject({ verdict: "deny", reason: "no-such-user", cache: "hit" });
  });

  it("keeps an allow for positiveTtlSeconds, then asks again", async () => {
    const { auth, advance, directory } = setup(ON);
    await auth("alice", SHARED);
    advance(59);
    expect(await auth("alice", SHARED)).toMatchObject({ cache: "hit" });
    advance(1);
    directory.passwords[dnOf("alice")] = "changed";
    expect(await auth("alice", SHARED)).toMatchObject({
      verdict: "deny",
      reason: "invalid-credentials",
      cache: "miss",
    });
  });

  it("never caches a tempfail: the next decision asks the directory again", async () => {
    const { auth, directory } = setup(ON);
    directory.down = true;
    expect(await auth("alice", SHARED)).toMatchObject({
      verdict: "tempfail",
      reason: "directory-unavailable",
      cache: "miss",
    });
    directory.down = false;
    expect(await auth("alice", SHARED)).toMatchObject({ verdict: "allow", cache: "miss" });
  });

  it("keeps nothing for what is refused without the directory (empty password, malformed user, malformed authzid)", async () => {
    const { auth, gate } = setup(ON);
    for (let i = 0; i < 2; i += 1) {
      expect(await auth("alice", "")).toMatchObject({ reason: "empty-password" });
      expect(await auth("alice\n", SHARED)).toMatchObject({ reason: "malformed-username" });
      expect(await auth("alice", SHARED, "submission", { authzid: "bob\n" })).toMatchObject({
        reason: "authzid-not-permitted",
      });
    }
    expect(await auth("alice", "")).not.toHaveProperty("cache");
    expect(gate.cacheStats().corp).toMatchObject({ hits: 0, misses: 0, entries: 0 });
  });

  it("asks the directory every time when the profile has no cache (the default)", async () => {
    const { auth, gate } = setup(ON);
    await auth("alice", SHARED, "plain");
    const second = await auth("alice", SHARED, "plain");
    expect(second).toMatchObject({ verdict: "allow" });
    expect(second).not.toHaveProperty("cache");
    expect(gate.cacheStats().uncached).toMatchObject({ kind: "auth", enabled: false, entries: 0 });
  });

  describe("serve-stale", () => {
    const STALE = { positiveTtlSeconds: 60, negativeTtlSeconds: 30, serveStaleSeconds: 600 };

    it("answers with a recent allow while the directory is down, marked stale, the verdict unchanged", async () => {
      const { auth, directory, advance, gate } = setup(STALE);
      const fresh = await auth("alice", SHARED);
      advance(120); // past the positive TTL
      directory.down = true;
      const stale = await auth("alice", SHARED);
      expect(stale).toMatchObject({
        verdict: "allow",
        identity: "alice",
        reason: "ok",
        smtp: fresh.smtp,
        cache: "stale",
      });
      expect(stale.detail).toMatch(/directory unavailable: answered with the allow cached 120 s ago/);
      expect(gate.cacheStats().corp?.staleServed).toBe(1);
    });

    it("asks the directory first: a stale allow is no answer while the directory can give a fresh one", async () => {
      const { auth, directory, advance } = setup(STALE);
      await auth("alice", SHARED);
      advance(120);
      directory.passwords[dnOf("alice")] = "changed";
      expect(await auth("alice", SHARED)).toMatchObject({
        verdict: "deny",
        reason: "invalid-credentials",
        cache: "miss",
      });
      // The deny replaced the allow: during an outage the deny is kept for its TTL, then comes a tempfail, never the
      // old allow.
      directory.down = true;
      expect(await auth("alice", SHARED)).toMatchObject({ verdict: "deny", cache: "hit" });
      advance(30);
      expect(await auth("alice", SHARED)).toMatchObject({ verdict: "tempfail", cache: "miss" });
    });

    it("never once the allow is serveStaleSeconds old", async () => {
      const { auth, directory, advance } = setup(STALE);
      await auth("alice", SHARED);
      directory.down = true;
      advance(599);
      expect(await auth("alice", SHARED)).toMatchObject({ verdict: "allow", cache: "stale" });
      advance(1);
      expect(await auth("alice", SHARED)).toMatchObject({ verdict: "tempfail", reason: "directory-unavailable" });
    });

    it("only for the same user and password, and never from a deny", async () => {
      const { auth, directory, advance } = setup(STALE);
      await auth("alice", SHARED);
      await auth("alice", "wrong");
      advance(120);
      directory.down = true;
      expect(await auth("bob", SHARED)).toMatchObject({ verdict: "tempfail" });
      expect(await auth("alice", "another")).toMatchObject({ verdict: "tempfail" });
      expect(await auth("alice", "wrong")).toMatchObject({ verdict: "tempfail" });
    });

    it("is off by default: an expired allow is not given during an outage", async () => {
      const { auth, directory, advance } = setup(ON);
      await auth("alice", SHARED);
      advance(61);
      directory.down = true;
      expect(await auth("alice", SHARED)).toMatchObject({ verdict: "tempfail", cache: "miss" });
    });
  });

  it("flushes one profile or all, and knows no other profile", async () => {
    const { auth, gate } = setup(ON);
    await auth("alice", SHARED);
    await auth("bob", SHARED);
    expect(gate.flushCache("nope")).toBeNull();
    expect(gate.flushCache("uncached")).toBe(0);
    expect(gate.flushCache("corp")).toBe(2);
    expect(await auth("alice", SHARED)).toMatchObject({ cache: "miss" });
    expect(gate.flushCache()).toBe(1);
  });
});

describe("the gate's certificate cache", () => {
  it("answers a repeated certificate from the cache, keyed by the whole chain", async () => {
    const { tls, directory, gate } = setup(ON);
    expect(await tls(pki.chain("alice"))).toMatchObject({ verdict: "allow", identity: "alice.cert", cache: "miss" });
    const operations = directory.operations;
    expect(await tls(pki.chain("alice"))).toMatchObject({ verdict: "allow", identity: "alice.cert", cache: "hit" });
    expect(directory.operations).toBe(operations);
    // Another certificate with the same identity is judged on its own.
    expect(await tls(pki.chain("expired"))).toMatchObject({
      verdict: "deny",
      reason: "certificate-expired",
      cache: "miss",
    });
    expect(await tls(pki.chain("expired"))).toMatchObject({
      verdict: "deny",
      reason: "certificate-expired",
      cache: "hit",
    });
    expect(gate.cacheStats().cert).toMatchObject({ kind: "certificate", enabled: true, hits: 2, misses: 2 });
  });

  it("never serves an allow past the certificate's notAfter", async () => {
    const { tls, clock } = setup({ positiveTtlSeconds: 86_400 });
    const notAfter = pki.leaves.alice.certificate.notAfter.getTime();
    clock.now = notAfter - 1_000;
    expect(await tls(pki.chain("alice"))).toMatchObject({ verdict: "allow", cache: "miss" });
    clock.now = notAfter - 1;
    expect(await tls(pki.chain("alice"))).toMatchObject({ verdict: "allow", cache: "hit" });
    clock.now = notAfter + 1_000;
    expect(await tls(pki.chain("alice"))).toMatchObject({
      verdict: "deny",
      reason: "certificate-expired",
      cache: "miss",
    });
  });

  it("does not cache the absence of a certificate", async () => {
    const { tls, gate } = setup(ON);
    await tls(null);
    expect(await tls(null)).not.toHaveProperty("cache");
    expect(gate.cacheStats().cert).toMatchObject({ hits: 0, misses: 0 });
  });

  it("serves a certificate's allow stale while the directory is down, only when configured", async () => {
    const { tls, directory, advance } = setup(ON, { positiveTtlSeconds: 60, serveStaleSeconds: 600 });
    await tls(pki.chain("alice"));
    advance(120);
    directory.down = true;
    expect(await tls(pki.chain("alice"))).toMatchObject({ verdict: "allow", identity: "alice.cert", cache: "stale" });
    // Another chain was never allowed.
    expect(await tls(pki.chain("serialLeadingZero"))).toMatchObject({
      verdict: "tempfail",
      reason: "directory-unavailable",
    });

    const off = setup(ON);
    await off.tls(pki.chain("alice"));
    off.advance(120);
    off.directory.down = true;
    expect(await off.tls(pki.chain("alice"))).toMatchObject({ verdict: "tempfail", reason: "directory-unavailable" });
  });

  it("keeps the allowance query's answer, so each listener applies its own onAllowanceFailure to a cached chain", async () => {
    const { tls, directory } = setup(ON, { positiveTtlSeconds: 60, negativeTtlSeconds: 60, serveStaleSeconds: 600 });
    expect(await tls(pki.chain("alice"), "gated-strict")).toMatchObject({
      verdict: "deny",
      reason: "allowance-failed",
      smtp: { code: 554, enhanced: "5.7.1" },
      close: true,
      cache: "miss",
    });
    const operations = directory.operations;
    expect(await tls(pki.chain("alice"), "gated-lenient")).toMatchObject({
      verdict: "allow",
      identity: "alice.cert",
      temporary: true,
      cache: "hit",
    });
    expect(await tls(pki.chain("alice"), "gated-strict")).toMatchObject({ verdict: "deny", cache: "hit" });
    expect(directory.operations).toBe(operations);
  });

  it("never serves a chain the allowance refused as a stale allow", async () => {
    const { tls, directory, advance } = setup(ON, {
      positiveTtlSeconds: 60,
      negativeTtlSeconds: 1,
      serveStaleSeconds: 600,
    });
    await tls(pki.chain("alice"), "gated-lenient");
    advance(120);
    directory.down = true;
    expect(await tls(pki.chain("alice"), "gated-lenient")).toMatchObject({
      verdict: "tempfail",
      reason: "directory-unavailable",
    });
  });
});
