// The Postfix policy server against a real slapd and the real API: in-process (fronts.postfixPolicy, started by
// the Node runtime) and at the edge (the same server over HTTP and GET /v1/listeners). Requests are written the
// way Postfix writes them (smtpd_check.c): fingerprints as colon-separated upper-case hex, names xtext-encoded and
// sent only for a certificate Postfix verified.
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../../api/config/load.ts";
import type { LogRecord } from "../../api/http/app.ts";
import { startApiServer, type ApiServer } from "../../api/runtime/node/server.ts";
import { ApiClient } from "../../contract/api-client.ts";
import { ListenerPolicyHolder } from "../../contract/listener-policy-holder.ts";
import { TEST_TOKEN, TEST_TOKEN_NEXT } from "../../dev/api.ts";
import { generateClientPki, type ClientPki } from "../../dev/client-pki/index.ts";
import { freePort } from "../../dev/ports.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";
import { createPostfixPolicyServer, type PostfixPolicyServer } from "../../fronts/postfix-policy/index.ts";
import { startFronts } from "../../fronts/start-fronts.ts";
import { addFingerprints, fingerprints, policyTestConfig } from "./postfix-policy-support.ts";

let pki: ClientPki;
let slapd: SlapdInstance;
let api: ApiServer;
let edge: PostfixPolicyServer;
let edgeClient: ApiClient;
let dir: string;
const logs: LogRecord[] = [];
const sockets: Record<"in-process" | "edge" | "keys", { port: number } | { path: string }> = {} as never;

beforeAll(async () => {
  pki = await generateClientPki();
  slapd = await startSlapd();
  await addFingerprints(slapd, pki);

  dir = await mkdtemp(join(tmpdir(), "smtpgate-policy-"));
  const port = await freePort();
  sockets["in-process"] = { port };
  sockets.keys = { path: join(dir, "keys.sock") };
  const config = policyTestConfig(slapd, pki.rootPem);
  api = await startApiServer({
    config: validateConfig(
      {
        ...config,
        fronts: {
          postfixPolicy: [
            { listener: "submission", listen: `127.0.0.1:${port}` },
            { listener: "keys", listen: { path: sockets.keys.path } },
          ],
        },
      },
      "test config",
    ),
    source: "test config",
    env: { TEST_TOKEN, TEST_TOKEN_NEXT, BIND_PW: SEED.servicePassword },
    listen: { host: "127.0.0.1", port: 0 },
    log: (record) => logs.push(record),
    startFronts,
  });
  await api.probed;

  edgeClient = new ApiClient({ url: api.url, token: TEST_TOKEN, timeoutMs: 3_000, connections: 2 });
  const holder = new ListenerPolicyHolder(edgeClient, "submission", () => {});
  await holder.load();
  edge = createPostfixPolicyServer({
    listener: "submission",
    listen: { host: "127.0.0.1", port: 0 },
    decider: edgeClient,
    hostAccessTable: () => holder,
    log: (record) => logs.push(record),
  });
  sockets.edge = { port: Number((await edge.listen()).split(":").at(-1)) };
});

afterAll(async () => {
  await edge?.close();
  await edgeClient?.close();
  await api?.close();
  await slapd?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** One request the way smtpd sends it at RCPT, and its action. */
async function ask(socket: { port: number } | { path: string }, attributes: Record<string, string>): Promise<string> {
  const all = {
    request: "smtpd_access_policy",
    protocol_state: "RCPT",
    protocol_name: "ESMTP",
    client_address: "192.0.2.7",
    helo_name: "laptop.example",
    sender: "alice@example.com",
    recipient: "someone@elsewhere.example",
    encryption_protocol: "TLSv1.3",
    ...attributes,
  };
  const connection = "path" in socket ? connect(socket.path) : connect(socket.port, "127.0.0.1");
  let received = "";
  await new Promise<void>((resolve, reject) => {
    connection.on("data", (chunk) => {
      received += chunk.toString();
      if (received.endsWith("\n\n")) resolve();
    });
    connection.on("error", reject);
    connection.on("close", () => resolve());
    connection.write(
      `${Object.entries(all)
        .map(([name, value]) => `${name}=${value}`)
        .join("\n")}\n\n`,
    );
  });
  connection.destroy();
  return received.replace(/^action=/, "").trim();
}

function certificate(leaf: "alice" | "bob" | "carol"): Record<string, string> {
  const prints = fingerprints(pki.leaves[leaf].der);
  return {
    ccert_subject: leaf,
    ccert_issuer: "smtpgate+20Test+20Intermediate+20CA",
    ccert_fingerprint: prints.certificate,
    ccert_pubkey_fingerprint: prints.publicKey,
  };
}

describe.each(["in-process", "edge"] as const)("the Postfix policy server (%s)", (mode) => {
  const socket = () => sockets[mode];

  it("lets a certificate that maps to an allowed identity relay (OK)", async () => {
    expect(await ask(socket(), certificate("alice"))).toBe("OK");
  });

  it("refuses a mapped certificate whose identity the allowance query refuses (bob)", async () => {
    expect(await ask(socket(), { ...certificate("bob"), sender: "bob@example.com" })).toBe(
      "REJECT 5.7.1 Valid client certificate required",
    );
  });

  it("has no opinion on an unmapped certificate when the profile falls back to SMTP AUTH", async () => {
    expect(await ask(socket(), certificate("carol"))).toBe("DUNNO");
  });

  it("checks a SASL login's allowance per RCPT: alice passes (DUNNO), bob is refused", async () => {
    expect(await ask(socket(), { sasl_method: "PLAIN", sasl_username: "alice" })).toBe("DUNNO");
    expect(await ask(socket(), { sasl_method: "PLAIN", sasl_username: "bob", sender: "bob@example.com" })).toBe(
      "REJECT 5.7.1 Access denied",
    );
  });

  it("binds the sender to the login: another user's address is refused, a subaddress of one's own is not", async () => {
    expect(await ask(socket(), { sasl_username: "ALICE", sender: "bob@example.com" })).toBe(
      "REJECT 5.7.1 Sender address rejected: not owned by user alice",
    );
    expect(await ask(socket(), { sasl_username: "alice", sender: "alice+lists@example.com" })).toBe("DUNNO");
    expect(await ask(socket(), { ...certificate("alice"), sender: "bob@example.com" })).toBe(
      "REJECT 5.7.1 Sender address rejected: not owned by user alice",
    );
  });
});

describe("the Postfix policy server in the Node runtime", () => {
  it("maps by public key on a unix socket, and refuses an unmapped certificate where there is no fallback", async () => {
    expect(await ask(sockets.keys, certificate("alice"))).toBe("OK");
    expect(await ask(sockets.keys, certificate("carol"))).toBe("REJECT 5.7.1 Valid client certificate required");
    expect(await ask(sockets.keys, { sasl_username: "alice" })).toBe("REJECT 5.7.1 Access denied");
  });

  it("logs the API's decision and its own answer, correlated", async () => {
    await ask(sockets["in-process"], certificate("alice"));
    const answer = logs.findLast((line) => line.msg === "policy request" && line.action === "OK");
    const decision = logs.find((line) => line.msg === "decision" && line.decisionId === answer?.decisionId);
    expect(decision).toMatchObject({
      kind: "certificate-facts",
      identity: "alice",
      verdict: "allow",
      session: answer?.session,
    });
  });

  it("defers, never accepts, while the directory is down", async () => {
    await slapd.stop();
    try {
      expect(await ask(sockets["in-process"], certificate("alice"))).toBe(
        "DEFER_IF_PERMIT 4.7.0 Temporary authentication failure",
      );
      expect(await ask(sockets["in-process"], { sasl_username: "alice" })).toBe(
        "DEFER_IF_PERMIT 4.7.0 Temporary authentication failure",
      );
    } finally {
      await slapd.start();
    }
  });

  it("refuses, in the configuration, a policy server for a profile that checks revocation", () => {
    const config = policyTestConfig(slapd, pki.rootPem);
    const profiles = config.authProfiles as Record<string, Record<string, unknown>>;
    profiles.key = { ...profiles.key, revocation: { useDistributionPoints: true } };
    expect(() =>
      validateConfig({ ...config, fronts: { postfixPolicy: [{ listener: "keys", listen: "127.0.0.1:1" }] } }, "t"),
    ).toThrow(/fronts\.postfixPolicy\[0\]\.listener.*checks revocation.*removing its mapping in LDAP/s);
  });
});
