// Listener and mail-flow policy features the relay enforces beyond the stack's four listeners: the host access
// table (reject, tcprefuse, no matching group), the `relay` behaviour, recipient and connection limits,
// `onAllowanceFailure: allow-temporarily`, and a directory that is down behind a working API (the API's
// tempfail verdict, as opposed to an unreachable API). One API with extra listeners over the stack's slapd/PKI.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConfigInput } from "../../api/config/schema.ts";
import { startTestApi, TEST_TOKEN, type TestApi } from "../../dev/api.ts";
import { freePort } from "../../dev/ports.ts";
import { startTestRelay, type TestRelay } from "../../dev/relay.ts";
import { SEED } from "../../dev/slapd/index.ts";
import { stackApiConfig } from "../../dev/stack.ts";
import { waitFor } from "../../dev/wait.ts";
import { RawSmtp, swaks } from "./clients.ts";
import { ALICE, BOB, receivedHeader, startRelayFixture, type RelayFixture } from "./fixture.ts";

let fx: RelayFixture;
let api: TestApi;
const relays: Record<string, TestRelay> = {};

const LOOPBACK = ["127.0.0.0/8", "::1"];

beforeAll(async () => {
  // The stack's slapd, PKI, CRLs and sink; the relays below use their own API.
  fx = await startRelayFixture({ listeners: [] });
  const base = stackApiConfig(fx.stack.slapd, fx.stack.pki, fx.stack.crls.baseUrl);
  const corp = base.directories.corp!;
  const config: ConfigInput = {
    ...base,
    directories: { ...base.directories, down: { ...corp, hosts: [`ldap://127.0.0.1:${await freePort()}`] } },
    smtpAuthQueries: { ...base.smtpAuthQueries, down: { directory: "down", filter: "(uid={u})", method: "bind" } },
    authProfiles: { ...base.authProfiles, down: { type: "ldap", query: "down" } },
    mailFlowPolicies: {
      ...base.mailFlowPolicies,
      BLOCKED: { behaviour: "reject" },
      REFUSED: { behaviour: "tcprefuse" },
      TRUSTED: { behaviour: "relay", tls: "preferred", smtpAuth: "off", maxRecipients: 2, maxConnectionsPerClient: 1 },
    },
    listeners: {
      blocked: { authProfile: "corp", hostAccessTable: [{ name: "EVERYONE", match: LOOPBACK, policy: "BLOCKED" }] },
      refused: { authProfile: "corp", hostAccessTable: [{ name: "EVERYONE", match: LOOPBACK, policy: "REFUSED" }] },
      elsewhere: {
        authProfile: "corp",
        hostAccessTable: [{ name: "TEST-NET", match: ["192.0.2.0/24"], policy: "SUBMISSION" }],
      },
      trusted: { authProfile: "corp", hostAccessTable: [{ name: "LOCAL", match: LOOPBACK, policy: "TRUSTED" }] },
      lenient: {
        authProfile: "corp",
        onAllowanceFailure: "allow-temporarily",
        hostAccessTable: [{ name: "LOCAL", match: LOOPBACK, policy: "SUBMISSION" }],
      },
      "directory-down": {
        authProfile: "down",
        hostAccessTable: [{ name: "LOCAL", match: LOOPBACK, policy: "SUBMISSION" }],
      },
    },
  };
  api = await startTestApi(config, { BIND_PW: SEED.servicePassword });
  for (const listener of Object.keys(config.listeners)) {
    relays[listener] = await startTestRelay({
      apiUrl: api.url,
      apiToken: TEST_TOKEN,
      listener,
      upstreamPort: fx.stack.sink.port,
      serverPki: fx.stack.slapd.pki,
    });
  }
});

afterAll(async () => {
  for (const relay of Object.values(relays)) await relay.close();
  await api?.close();
  await fx?.close();
});

const port = (listener: string): number => relays[listener]!.ports.starttls!;

describe("host access table", () => {
  it("greets a client whose sender group has a reject policy with 554 5.7.1 Access denied, then closes", async () => {
    const client = await RawSmtp.connect(port("blocked"));
    expect(client.greeting.last).toBe("554 5.7.1 Access denied");
    await client.closed;
    expect(client.isClosed).toBe(true);
  });

  it("closes a tcprefuse connection before any greeting", async () => {
    await expect(RawSmtp.connect(port("refused"))).rejects.toThrow(
      /connection closed while waiting for a reply \(unread: ""\)/,
    );
  });

  it("refuses a client that matches no sender group with 554 5.7.1 Access denied", async () => {
    const client = await RawSmtp.connect(port("elsewhere"));
    expect(client.greeting.last).toBe("554 5.7.1 Access denied");
    await client.closed;
    expect(relays.elsewhere!.logs.map((record) => String(record.msg))).toContainEqual(
      expect.stringMatching(/^ICID \d+ REJECT: 127\.0\.0\.1 matches no sender group$/),
    );
  });
});

describe("a relay policy (trusted hosts: no AUTH, any destination) and its limits", () => {
  it("relays to an outside domain without authentication, marked ESMTP", async () => {
    const before = fx.stack.sink.messages.length;
    const result = await swaks(port("trusted"), ["--from", "app@internal.example", "--to", "friend@other.example"]);
    expect(result.replies.at(-2)).toMatch(/^250 2\.0\.0 Ok: relayed /);
    const sunk = fx.sunkSince(before);
    expect(sunk).toHaveLength(1);
    expect(receivedHeader(sunk[0]!)).toMatch(/ with ESMTP id /);
  });

  it("answers the recipient past maxRecipients (2) with 452 4.5.3", async () => {
    const client = await RawSmtp.connect(port("trusted"));
    try {
      await client.ehlo();
      await client.send("MAIL FROM:<app@internal.example>");
      expect((await client.send("RCPT TO:<one@other.example>")).last).toBe("250 2.1.5 Accepted");
      expect((await client.send("RCPT TO:<two@other.example>")).last).toBe("250 2.1.5 Accepted");
      expect((await client.send("RCPT TO:<three@other.example>")).last).toBe("452 4.5.3 Too many recipients");
    } finally {
      await client.quit();
    }
  });

  it("answers a connection past maxConnectionsPerClient (1) with 421 4.7.0", async () => {
    const first = await RawSmtp.connect(port("trusted"));
    try {
      const second = await RawSmtp.connect(port("trusted"));
      expect(second.greeting.last).toBe("421 4.7.0 Too many connections from your host, try again later");
      await second.closed;
    } finally {
      await first.quit();
    }
    // Once the relay has seen the first one go, a new connection is welcome again.
    await waitFor(() => relays.trusted!.metrics.sessionsActive.get() === 0, { what: "the first session to close" });
    const third = await RawSmtp.connect(port("trusted"));
    expect(third.greeting.last).toBe("220 relay.test ESMTP smtpgate");
    await third.quit();
  });
});

describe("onAllowanceFailure: allow-temporarily", () => {
  it("lets bob (not in smtp-users) in with 235 and marks every later log line of his session", async () => {
    const before = fx.stack.sink.messages.length;
    const result = await swaks(
      port("lenient"),
      [
        "--from",
        "bob@example.com",
        "--to",
        "friend@other.example",
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        BOB.user,
        "--auth-password",
        BOB.password,
      ],
      { ca: fx.caFile },
    );
    expect(result.replies).toContain("235 2.7.0 Authentication succeeded");
    expect(result.replies.at(-2)).toMatch(/^250 2\.0\.0 Ok: relayed /);
    expect(receivedHeader(fx.sunkSince(before)[0]!)).toContain("(authenticated as bob by ldap-bind)");
    const logs = relays.lenient!.logs;
    const auth = logs.findIndex((record) => String(record.msg).startsWith("SMTP Auth: "));
    expect(logs[auth]).toMatchObject({
      msg: expect.stringMatching(/^SMTP Auth: \(ICID \d+\) succeeded for user: bob /),
      temporaryAllowance: true,
    });
    const session = logs[auth]!.session;
    const later = logs.slice(auth).filter((record) => record.session === session);
    expect(later.length).toBeGreaterThanOrEqual(3);
    for (const record of later) expect(record.temporaryAllowance).toBe(true);
    // Lines before the AUTH are not marked.
    expect(
      logs
        .slice(0, auth)
        .filter((record) => record.session === session)
        .every((record) => record.temporaryAllowance === undefined),
    ).toBe(true);
  });
});

describe("directory down behind a working API", () => {
  it("answers AUTH with 454 4.7.0 Temporary authentication failure, never 235", async () => {
    const client = await RawSmtp.connect(port("directory-down"));
    try {
      expect((await client.submissionLogin(await fx.tls(), ALICE.user, ALICE.password)).last).toBe(
        "454 4.7.0 Temporary authentication failure",
      );
      expect((await client.send("MAIL FROM:<alice@example.com>")).last).toBe("530 5.7.0 Authentication required");
    } finally {
      await client.quit();
    }
    expect(relays["directory-down"]!.logs.map((record) => String(record.msg))).toContainEqual(
      expect.stringMatching(/^SMTP Auth: \(ICID \d+\) temporary failure for user: alice reason directory-unavailable$/),
    );
  });
});
