// A real Postfix (3.7.11, Debian) asks smtpgate's policy server at RCPT, with the main.cf lines of
// docs/integrations/postfix-policy.main.cf: Postfix verifies the client certificate against its own CA file and
// sends its fingerprints; smtpgate maps them in LDAP. swaks is the SMTP client, with the test PKI's certificates.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../../api/config/load.ts";
import { startApiServer, type ApiServer } from "../../api/runtime/node/server.ts";
import { TEST_TOKEN, TEST_TOKEN_NEXT } from "../../dev/api.ts";
import { generateClientPki, writeClientPki } from "../../dev/client-pki/index.ts";
import { freePort } from "../../dev/ports.ts";
import { startPostfix, type PostfixInstance } from "../../dev/postfix/index.ts";
import { swaksTranscript } from "../../dev/postfix/swaks.ts";
import { generateServerPki } from "../../dev/server-pki.ts";
import { startSink, type Sink } from "../../dev/sink.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";
import type { LogRecord } from "../../lib/json-lines.ts";
import { addFingerprints, policyTestConfig } from "../../test/fronts/postfix-policy-support.ts";
import { startFronts } from "../start-fronts.ts";

const SNIPPET = new URL("../../docs/integrations/postfix-policy.main.cf", import.meta.url);
const SNIPPET_ADDRESS = "inet:127.0.0.1:10040";
const SNIPPET_CA = "/etc/postfix/client-ca.pem";

let slapd: SlapdInstance;
let api: ApiServer;
let postfix: PostfixInstance;
let sink: Sink;
let dir: string;
let files: Record<string, string>;
const logs: LogRecord[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "smtpgate-postfix-policy-"));
  const [pki, serverPki, policyPort] = await Promise.all([
    generateClientPki(),
    generateServerPki(join(dir, "server")),
    freePort(),
  ]);
  files = await writeClientPki(pki, join(dir, "clients"));
  // Postfix verifies the whole chain itself; clients (swaks) may send their leaf alone.
  const caFile = join(dir, "client-ca.pem");
  await writeFile(caFile, pki.rootPem + pki.intermediate.pem);
  slapd = await startSlapd();
  await addFingerprints(slapd, pki);
  sink = await startSink();
  api = await startApiServer({
    config: validateConfig(
      {
        ...policyTestConfig(slapd, pki.rootPem),
        fronts: { postfixPolicy: [{ listen: `127.0.0.1:${policyPort}`, listener: "submission" }] },
      },
      "test config",
    ),
    env: { TEST_TOKEN, TEST_TOKEN_NEXT, BIND_PW: SEED.servicePassword },
    listen: { host: "127.0.0.1", port: 0 },
    log: (record) => logs.push(record),
    startFronts,
  });
  const snippet = await readFile(SNIPPET, "utf8");
  postfix = await startPostfix({
    relayPort: sink.port,
    tls: { certFile: serverPki.certFile, keyFile: serverPki.keyFile },
    mainCf: snippet.replace(SNIPPET_ADDRESS, `inet:127.0.0.1:${policyPort}`).replace(SNIPPET_CA, caFile),
  });
});

afterAll(async () => {
  await postfix?.close();
  await api?.close();
  await sink?.close();
  await slapd?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** swaks with `leaf`'s certificate over STARTTLS, from `from` to an address Postfix must relay for. */
async function send(leaf: "alice" | "bob" | "carol", from: string): Promise<string> {
  return await swaksTranscript(postfix.port, [
    ...["--tls", "--from", from, "--to", "someone@elsewhere.example"],
    ...["--tls-cert", files[`${leaf}.pem`] as string, "--tls-key", files[`${leaf}.key`] as string],
  ]);
}

describe("Postfix with check_policy_service and smtpgate", () => {
  it("uses the docs' main.cf lines, byte for byte but the address and the CA file", async () => {
    const snippet = await readFile(SNIPPET, "utf8");
    const page = await readFile(new URL("../../docs/integrations/postfix.md", import.meta.url), "utf8");
    expect(page).toContain(snippet);
  });

  it("relays for a certificate whose fingerprint maps to alice", async () => {
    const out = await send("alice", "alice@example.com");
    expect(out).toMatch(/<~ {2}250 2\.0\.0 Ok: queued as/);
    await postfix.waitForLog(/status=sent/, 10_000);
    expect(sink.messages.at(-1)?.to).toEqual(["someone@elsewhere.example"]);
    expect(logs).toContainEqual(expect.objectContaining({ msg: "policy request", action: "OK", identity: "alice" }));
  });

  it("refuses bob's mapped certificate per RCPT: the allowance query refuses him", async () => {
    expect(await send("bob", "bob@example.com")).toMatch(
      /<~\* {1}554 5\.7\.1 <someone@elsewhere\.example>: Recipient address rejected: Valid client certificate required/,
    );
  });

  it("refuses relaying for an unmapped certificate (Postfix's reject_unauth_destination after DUNNO)", async () => {
    expect(await send("carol", "carol@example.com")).toMatch(/<~\* {1}554 5\.7\.1 .*Relay access denied/);
    expect(logs).toContainEqual(
      expect.objectContaining({ msg: "decision", kind: "certificate-facts", reason: "certificate-unmapped" }),
    );
  });

  it("refuses a sender alice does not own", async () => {
    expect(await send("alice", "bob@example.com")).toMatch(
      /<~\* {1}554 5\.7\.1 <someone@elsewhere\.example>: Recipient address rejected: Sender address rejected: not owned by user alice/,
    );
  });
});
