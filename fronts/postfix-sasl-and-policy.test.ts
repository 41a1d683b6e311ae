// One Postfix session using both of smtpgate's fronts, as a site running both does: SMTP AUTH over the Dovecot
// protocol, then the policy server at RCPT for the same login (its allowance query and its sender). The main.cf is
// the docs' two files one after the other (docs/integrations/postfix.md, "Both at once"): the policy file's
// smtpd_relay_restrictions, which keeps permit_sasl_authenticated, replaces the SASL file's.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../api/config/load.ts";
import { startApiServer, type ApiServer } from "../api/runtime/node/server.ts";
import { TEST_TOKEN, TEST_TOKEN_NEXT } from "../dev/api.ts";
import { generateClientPki } from "../dev/client-pki/index.ts";
import { freePort } from "../dev/ports.ts";
import { startPostfix, type PostfixInstance } from "../dev/postfix/index.ts";
import { postfixSaslMainCf } from "../dev/postfix/snippets.ts";
import { swaksTranscript } from "../dev/postfix/swaks.ts";
import { generateServerPki } from "../dev/server-pki.ts";
import { startSink, type Sink } from "../dev/sink.ts";
import { SEED, startSlapd, type SlapdInstance } from "../dev/slapd/index.ts";
import type { LogRecord } from "../lib/json-lines.ts";
import { policyTestConfig } from "../test/fronts/postfix-policy-support.ts";
import { startFronts } from "./start-fronts.ts";

const POLICY_SNIPPET = new URL("../docs/integrations/postfix-policy.main.cf", import.meta.url);
const { alice, bob } = SEED.users;

let slapd: SlapdInstance;
let api: ApiServer;
let postfix: PostfixInstance;
let sink: Sink;
let dir: string;
const logs: LogRecord[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "smtpgate-postfix-both-"));
  const [pki, serverPki, saslPort, policyPort] = await Promise.all([
    generateClientPki(),
    generateServerPki(join(dir, "server")),
    freePort(),
    freePort(),
  ]);
  slapd = await startSlapd();
  sink = await startSink();
  const base = policyTestConfig(slapd, pki.rootPem);
  api = await startApiServer({
    config: validateConfig(
      {
        ...base,
        listeners: {
          ...base.listeners,
          password: { authProfile: "corp", hostAccessTable: base.listeners?.submission?.hostAccessTable },
        },
        fronts: {
          dovecotSasl: [{ listen: `127.0.0.1:${saslPort}`, listener: "password" }],
          postfixPolicy: [{ listen: `127.0.0.1:${policyPort}`, listener: "password" }],
        },
      },
      "test config",
    ),
    env: { TEST_TOKEN, TEST_TOKEN_NEXT, BIND_PW: SEED.servicePassword },
    listen: { host: "127.0.0.1", port: 0 },
    log: (record) => logs.push(record),
    startFronts,
  });
  const [sasl, policy] = await Promise.all([
    postfixSaslMainCf(`127.0.0.1:${saslPort}`),
    readFile(POLICY_SNIPPET, "utf8"),
  ]);
  postfix = await startPostfix({
    relayPort: sink.port,
    tls: { certFile: serverPki.certFile, keyFile: serverPki.keyFile },
    mainCf:
      sasl +
      policy
        .replace("inet:127.0.0.1:10040", `inet:127.0.0.1:${policyPort}`)
        .replace("/etc/postfix/client-ca.pem", serverPki.caFile),
  });
});

afterAll(async () => {
  await postfix?.close();
  await api?.close();
  await sink?.close();
  await slapd?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function submit(user: string, password: string, from: string): Promise<string> {
  return await swaksTranscript(postfix.port, [
    ...["--tls", "--auth", "PLAIN", "--auth-user", user, "--auth-password", password],
    ...["--from", from, "--to", "x@example.net"],
  ]);
}

describe("Postfix with smtpgate for SMTP AUTH and for policy, in one session", () => {
  it("logs alice in over the Dovecot protocol and relays her own address, checked again at RCPT", async () => {
    const out = await submit("alice", alice.password, "alice@example.com");
    expect(out).toMatch(/<~ {2}235 2\.7\.0 Authentication successful/);
    expect(out).toMatch(/<~ {2}250 2\.0\.0 Ok: queued as/);
    await postfix.waitForLog(/status=sent/, 10_000);
    expect(sink.messages.at(-1)?.to).toEqual(["x@example.net"]);
    expect(logs).toContainEqual(expect.objectContaining({ msg: "policy request", identity: "alice" }));
  });

  it("refuses at RCPT a sender the login does not own, after AUTH succeeded", async () => {
    const out = await submit("alice", alice.password, "bob@example.com");
    expect(out).toMatch(/<~ {2}235 2\.7\.0 Authentication successful/);
    expect(out).toMatch(
      /<~\* {1}554 5\.7\.1 <x@example\.net>: Recipient address rejected: Sender address rejected: not owned by user alice/,
    );
  });

  it("refuses bob at AUTH (the allowance query), so he never reaches RCPT", async () => {
    const out = await submit("bob", bob.password, "bob@example.com");
    expect(out).toMatch(/<~\* {1}535 5\.7\.8 Error: authentication failed/);
    expect(out).not.toMatch(/RCPT TO/);
  });
});
