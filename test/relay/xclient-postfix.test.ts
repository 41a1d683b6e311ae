// The relay in front of a real Postfix (dev/postfix/) with `upstream.xclient`: Postfix's log names the client's
// address and login, not the relay's; a Postfix not configured for XCLIENT still gets the mail under `auto` (and
// the relay says so), and gets nothing under `required` (451). The Postfix service and the relay's upstream
// settings are the files docs/integrations/postfix-relay.md shows.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { TEST_TOKEN } from "../../dev/api.ts";
import { startPostfix, type PostfixInstance } from "../../dev/postfix/index.ts";
import { startTestRelay, type TestRelay } from "../../dev/relay.ts";
import { waitFor } from "../../dev/wait.ts";
import type { RelayConfigInput } from "../../edge-relay/config.ts";
import { swaks } from "./clients.ts";
import { ALICE, STACK_LISTENERS, startRelayFixture, type RelayFixture } from "./fixture.ts";

const DOCS = join(import.meta.dirname, "../../docs/integrations");
const MASTER_CF = join(DOCS, "postfix-relay/master.cf");
const RELAY_UPSTREAM = join(DOCS, "postfix-relay/relay-upstream.yaml");
/** The relay connects from 127.0.0.1; the client from another loopback address, so the two can be told apart. */
const CLIENT_ADDRESS = "127.0.0.5";

/** The `-o name=value` lines of the documented master.cf service. */
function serviceOptions(masterCf: string): Record<string, string> {
  const options: Record<string, string> = {};
  for (const match of masterCf.matchAll(/^\s+-o ([a-z_]+)=(.*)$/gm)) options[match[1] as string] = match[2] as string;
  return options;
}

let fx: RelayFixture;
/** Postfix as the docs configure it for the relay. */
let postfix: PostfixInstance;
/** The same service without smtpd_authorized_xclient_hosts: a Postfix that does not offer XCLIENT to the relay. */
let plainPostfix: PostfixInstance;
let documentedUpstream: NonNullable<RelayConfigInput["upstream"]>;
const relays: TestRelay[] = [];

beforeAll(async () => {
  fx = await startRelayFixture({ listeners: [STACK_LISTENERS.password] });
  const options = serviceOptions(await readFile(MASTER_CF, "utf8"));
  const { smtpd_authorized_xclient_hosts: _authorized, ...withoutXclient } = options;
  const tls = { certFile: fx.stack.slapd.pki.certFile, keyFile: fx.stack.slapd.pki.keyFile };
  [postfix, plainPostfix] = await Promise.all([
    startPostfix({ relayPort: fx.stack.sink.port, smtpdOptions: options, tls }),
    startPostfix({ relayPort: fx.stack.sink.port, smtpdOptions: withoutXclient, tls }),
  ]);
  documentedUpstream = (parseYaml(await readFile(RELAY_UPSTREAM, "utf8")) as RelayConfigInput).upstream;
}, 60_000);

afterAll(async () => {
  await Promise.all(relays.map((relay) => relay.close()));
  await Promise.all([postfix?.close(), plainPostfix?.close()]);
  await fx?.close();
});

/** A relay of the password listener with the documented upstream settings (our CA, port and name), towards `upstream`. */
async function relayTo(upstream: PostfixInstance, xclient: "auto" | "required"): Promise<TestRelay> {
  const relay = await startTestRelay({
    apiUrl: fx.stack.api.url,
    apiToken: TEST_TOKEN,
    listener: STACK_LISTENERS.password,
    upstreamPort: upstream.port,
    serverPki: fx.stack.slapd.pki,
    overrides: {
      upstream: {
        ...documentedUpstream,
        port: upstream.port,
        tls: { ...documentedUpstream.tls, caFile: fx.caFile, serverName: "localhost" },
        timeoutMs: 5_000,
        xclient,
      },
    },
  });
  relays.push(relay);
  return relay;
}

/** swaks as alice from CLIENT_ADDRESS through the relay, to an outside address. */
function aliceSends(relay: TestRelay, subject: string) {
  const port = relay.ports.starttls;
  if (port === undefined) throw new Error("the relay has no STARTTLS port");
  return swaks(
    port,
    [
      ...["--local-interface", CLIENT_ADDRESS, "--from", ALICE.address, "--to", "friend@other.example"],
      ...["--tls", "--auth", "PLAIN", "--auth-user", ALICE.user, "--auth-password", ALICE.password],
      ...["--header", `Subject: ${subject}`],
    ],
    { ca: fx.caFile },
  );
}

function logText(relay: TestRelay): string {
  return relay.logs.map((record) => String(record.msg)).join("\n");
}

describe("the relay in front of Postfix with upstream.xclient", () => {
  it("hands Postfix the client's address, HELO and login: Postfix logs them and relays by the login", async () => {
    const relay = await relayTo(postfix, "required");
    const since = fx.stack.sink.messages.length;
    const result = await aliceSends(relay, "xclient required");
    expect(result.replies.at(-2), logText(relay)).toMatch(
      /^250 2\.0\.0 Ok: relayed \(250 2\.0\.0 Ok: queued as [0-9A-F]+\)/,
    );
    // mynetworks is the relay's 127.0.0.1 only: the message passed smtpd_relay_restrictions by the login.
    const [, queueId] = await postfix.waitForLog(
      /postfix\/smtpgate\/smtpd\[\d+\]: ([0-9A-F]+): client=unknown\[127\.0\.0\.5\], sasl_method=XCLIENT, sasl_username=alice/,
    );
    await postfix.waitForLog(new RegExp(`${queueId}: to=<friend@other\\.example>.*status=sent`), 10_000);
    const [message] = fx.sunkSince(since);
    const postfixReceived = /^Received: from client\.test \(unknown \[127\.0\.0\.5\]\)/m;
    expect(message?.data.toString("utf8")).toMatch(postfixReceived);
    expect(postfix.maillog()).not.toMatch(/client=localhost\[127\.0\.0\.1\]/);
  });

  it("under auto, relays as itself to a Postfix that does not offer XCLIENT, and says so in its log", async () => {
    const relay = await relayTo(plainPostfix, "auto");
    const since = fx.stack.sink.messages.length;
    const result = await aliceSends(relay, "xclient auto");
    expect(result.replies.at(-2)).toMatch(/^250 2\.0\.0 Ok: relayed/);
    await plainPostfix.waitForLog(/: client=localhost\[127\.0\.0\.1\]\n/);
    expect(logText(relay)).toMatch(
      /ICID \d+ Upstream 127\.0\.0\.1:\d+ does not offer XCLIENT: it sees this relay as the client \(upstream\.xclient: auto\)/,
    );
    await plainPostfix.waitForLog(/status=sent/, 10_000);
    expect(fx.sunkSince(since)).toHaveLength(1);
  });

  it("under required, answers 451 4.3.5 and hands a Postfix that does not offer XCLIENT nothing", async () => {
    const relay = await relayTo(plainPostfix, "required");
    const since = fx.stack.sink.messages.length;
    const logStart = plainPostfix.maillog().length;
    const result = await aliceSends(relay, "xclient required, not offered");
    expect(result.replies.at(-2)).toBe("451 4.3.5 Upstream server not configured for this relay");
    expect(logText(relay)).toMatch(
      /Upstream 127\.0\.0\.1:\d+: the upstream does not offer XCLIENT; not relayed \(upstream\.xclient: required\)/,
    );
    // The relay hung up after EHLO: Postfix's session ends without a MAIL command, no queue file was made.
    const session = () => plainPostfix.maillog().slice(logStart);
    await waitFor(() => /disconnect from localhost\[127\.0\.0\.1\]/.test(session()), { what: "the disconnect" });
    expect(session()).toMatch(/disconnect from localhost\[127\.0\.0\.1\] ehlo=3 starttls=1 commands=4\n/);
    expect(session()).not.toMatch(/: client=/);
    expect(fx.sunkSince(since)).toEqual([]);
  });
});

describe("docs/integrations/postfix-relay.md", () => {
  it("shows the master.cf service and the relay's upstream settings the tests use, byte for byte", async () => {
    const page = await readFile(join(DOCS, "postfix-relay.md"), "utf8");
    expect(page).toContain(`\`\`\`\n${await readFile(MASTER_CF, "utf8")}\`\`\``);
    expect(page).toContain(`\`\`\`yaml\n${await readFile(RELAY_UPSTREAM, "utf8")}\`\`\``);
  });
});
