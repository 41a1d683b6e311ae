// The policy server on real sockets (TCP and a unix socket), with hostile input. The Decider is a stand-in that
// answers by the request's identity or fingerprint, so every reply here is the protocol's and the mapping's; the
// decisions themselves are test/fronts/postfix-policy.test.ts (real slapd, real API).
import { mkdtemp, rm, stat } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { MtaFactsDecider } from "../../contract/decider.ts";
import { compileHostAccessTable } from "../../contract/host-access-table.ts";
import { listenerPolicySchema } from "../../contract/listener-policy.ts";
import type { Verdict } from "../../contract/verdict.ts";
import type { LogRecord } from "../../lib/json-lines.ts";
import { createPostfixPolicyServer, type PostfixPolicyServer } from "./index.ts";

const FINGERPRINT = "AB:".repeat(31) + "AB";
const table = compileHostAccessTable(
  listenerPolicySchema.parse({
    listener: "submission",
    authProfile: { name: "corp", type: "certificate", allowAuthFallback: true },
    hostAccessTable: [
      { name: "blocked", match: ["192.0.2.66"], policy: "BLOCKED" },
      { name: "everyone", match: ["0.0.0.0/0", "::/0"], policy: "RELAYED" },
    ],
    mailFlowPolicies: {
      RELAYED: { behaviour: "relay", tls: "required", smtpAuth: "required", senderLogin: "enforce" },
      BLOCKED: { behaviour: "reject" },
    },
    acceptedDomains: [],
  }),
);

function verdict(fields: Partial<Verdict>): Verdict {
  return {
    verdict: "deny",
    authenticated: false,
    method: null,
    identity: null,
    dn: null,
    temporary: false,
    reason: "no-such-user",
    retryAfter: null,
    addresses: null,
    smtp: { code: 554, enhanced: "5.7.1", text: "Access denied" },
    close: false,
    profile: "corp",
    decisionId: "d-1",
    ...fields,
  };
}

const allowAlice = verdict({
  verdict: "allow",
  authenticated: true,
  identity: "alice",
  reason: "ok",
  addresses: ["alice@example.com"],
  smtp: { code: 235, enhanced: "2.7.0", text: "Authentication succeeded" },
});

/** alice is allowed, by login or by the fingerprint above; "down" is a directory outage; "hang" never answers. */
const decider: MtaFactsDecider = {
  async decideIdentity(request) {
    if (request.identity === "down")
      return verdict({
        verdict: "tempfail",
        reason: "directory-unavailable",
        smtp: { code: 454, enhanced: "4.7.0", text: "Temporary authentication failure" },
      });
    if (request.identity === "broken") throw new Error("API unreachable");
    if (request.identity === "hang") return await new Promise<Verdict>(() => {});
    return request.identity === "alice" ? allowAlice : verdict({ reason: "allowance-failed" });
  },
  async decideCertificateFacts(request) {
    return request.certificate.sha256 === "ab".repeat(32)
      ? allowAlice
      : verdict({
          reason: "certificate-unmapped",
          smtp: { code: 554, enhanced: "5.7.1", text: "Valid client certificate required" },
        });
  },
};

const logs: LogRecord[] = [];
let server: PostfixPolicyServer;
let port: number;

beforeAll(async () => {
  server = createPostfixPolicyServer({
    listener: "submission",
    listen: { host: "127.0.0.1", port: 0 },
    decider,
    hostAccessTable: () => table,
    log: (record) => logs.push(record),
    maxRequestBytes: 4096,
    requestTimeoutMs: 300,
  });
  port = Number((await server.listen()).split(":").at(-1));
});

afterAll(async () => {
  await server?.close();
});

afterEach(() => {
  logs.length = 0;
});

function request(attributes: Record<string, string>): string {
  const all = { request: "smtpd_access_policy", protocol_state: "RCPT", client_address: "192.0.2.7", ...attributes };
  return `${Object.entries(all)
    .map(([name, value]) => `${name}=${value}`)
    .join("\n")}\n\n`;
}

/** Connects, sends `text`, and collects what comes back until the server closes or `answers` arrived. */
async function exchange(text: string | Buffer, answers = 1, target: { port: number } | { path: string } = { port }) {
  const socket: Socket = "path" in target ? connect(target.path) : connect(target.port, "127.0.0.1");
  let received = "";
  const closed = new Promise<boolean>((resolve) => {
    socket.on("data", (chunk) => {
      received += chunk.toString();
      if (received.split("\n\n").length - 1 >= answers) {
        socket.end();
        resolve(false);
      }
    });
    socket.on("close", () => resolve(true));
    socket.on("error", () => resolve(true));
  });
  socket.write(text);
  const closedByServer = await closed;
  return { received, actions: received.split("\n\n").filter((line) => line !== ""), closedByServer };
}

describe("the Postfix policy server", () => {
  it("answers OK for a verified certificate that maps to an allowed identity", async () => {
    const { actions } = await exchange(
      request({
        ccert_subject: "alice",
        ccert_issuer: "Example+20CA",
        ccert_fingerprint: FINGERPRINT,
        sender: "alice@example.com",
      }),
    );
    expect(actions).toEqual(["action=OK"]);
  });

  it("leaves a SASL login to Postfix (DUNNO) and refuses a sender the login does not own", async () => {
    const { actions } = await exchange(
      request({ sasl_username: "alice", sender: "alice@example.com" }) +
        request({ sasl_username: "alice", sender: "bob@example.com" }),
      2,
    );
    expect(actions).toEqual(["action=DUNNO", "action=REJECT 5.7.1 Sender address rejected: not owned by user alice"]);
    expect(logs.find((line) => line.action?.toString().startsWith("REJECT"))).toMatchObject({
      decidedBy: "sender-login",
      identity: "alice",
    });
  });

  it("refuses a login the allowance query refuses, and a client in no allowed sender group", async () => {
    const { actions } = await exchange(
      request({ sasl_username: "bob" }) + request({ client_address: "192.0.2.66", sasl_username: "alice" }),
      2,
    );
    expect(actions).toEqual(["action=REJECT 5.7.1 Access denied", "action=REJECT 5.7.1 Access denied"]);
  });

  it("defers when the directory is down or the Decider does not answer, never OK", async () => {
    const { actions } = await exchange(request({ sasl_username: "down" }) + request({ sasl_username: "broken" }), 2);
    expect(actions).toEqual([
      "action=DEFER_IF_PERMIT 4.7.0 Temporary authentication failure",
      "action=DEFER_IF_PERMIT 4.7.0 Temporary authentication failure",
    ]);
  });

  it("does not use a certificate Postfix did not verify (fingerprint without subject), nor a non-SHA-256 one", async () => {
    const { actions } = await exchange(
      request({ ccert_fingerprint: FINGERPRINT }) +
        request({ ccert_subject: "alice", ccert_fingerprint: "C2:9D:F4:87:71:73:73:D9:18:E7:C2:F3:C1:DA:6E:04" }),
      2,
    );
    expect(actions).toEqual(["action=DUNNO", "action=REJECT 5.7.1 Valid client certificate required"]);
    expect(logs.at(-1)?.note).toMatch(/smtpd_tls_fingerprint_digest = sha256/);
  });

  it("answers pipelined requests in order, unknown attributes ignored", async () => {
    const many = Array.from({ length: 20 }, (_, index) =>
      request({ sasl_username: index % 2 === 0 ? "alice" : "bob", [`unknown_${index}`]: "x" }),
    ).join("");
    const { actions } = await exchange(many, 20);
    expect(actions).toEqual(
      Array.from({ length: 20 }, (_, index) =>
        index % 2 === 0 ? "action=DUNNO" : "action=REJECT 5.7.1 Access denied",
      ),
    );
  });

  it.each([
    ["a NUL byte", Buffer.from(request({ sender: "a\u0000@example.com" })), "NUL byte in a request"],
    [
      "a huge attribute line",
      Buffer.from(`request=smtpd_access_policy\nsender=${"a".repeat(64 * 1024)}\n\n`),
      "request over 4096 bytes",
    ],
    [
      "a line that is not name=value",
      Buffer.from("request=smtpd_access_policy\nhello\n\n"),
      "a request line that is not name=value",
    ],
    ["another request type", Buffer.from("request=junk\n\n"), "not an smtpd_access_policy request"],
  ])("closes on %s without an answer, and logs why", async (_, bytes, reason) => {
    const { received, closedByServer } = await exchange(bytes);
    expect(received).toBe("");
    expect(closedByServer).toBe(true);
    expect(logs).toContainEqual(expect.objectContaining({ msg: "policy connection closed", level: "warn", reason }));
  });

  it("answers what came before a malformed request, then closes", async () => {
    const { actions, closedByServer } = await exchange(request({ sasl_username: "alice" }) + "garbage\n\n", 2);
    expect(actions).toEqual(["action=DUNNO"]);
    expect(closedByServer).toBe(true);
  });

  it("closes a request that never ends (no empty line) or trickles in past the deadline", async () => {
    const started = Date.now();
    const { received, closedByServer } = await exchange("request=smtpd_access_policy\nsender=a@example.com\n");
    expect({ received, closedByServer }).toEqual({ received: "", closedByServer: true });
    expect(Date.now() - started).toBeLessThan(2_000);

    const socket = connect(port, "127.0.0.1");
    const closed = new Promise((resolve) => socket.on("close", resolve));
    const timer = setInterval(() => socket.writable && socket.write("x"), 50);
    socket.write("request=smtpd_access_policy\nsender=");
    await closed;
    clearInterval(timer);
    expect(logs).toContainEqual(expect.objectContaining({ reason: "a request not finished in time" }));
  });

  it("keeps serving other connections while one waits on a decision that never comes", async () => {
    const waiting = connect(port, "127.0.0.1");
    waiting.write(request({ sasl_username: "hang" }));
    const { actions } = await exchange(request({ sasl_username: "alice" }));
    expect(actions).toEqual(["action=DUNNO"]);
    waiting.destroy();
  });

  it("listens on a unix socket with the configured mode, replacing a stale one", async () => {
    const dir = await mkdtemp(join(tmpdir(), "smtpgate-policy-"));
    const path = join(dir, "policy");
    try {
      for (const attempt of [1, 2]) {
        const unix = createPostfixPolicyServer({
          listener: "submission",
          listen: { path, mode: 0o600 },
          decider,
          hostAccessTable: () => table,
          log: () => {},
        });
        await unix.listen();
        expect((await stat(path)).mode & 0o777).toBe(0o600);
        const { actions } = await exchange(request({ sasl_username: "alice" }), 1, { path });
        expect(actions, `attempt ${attempt}`).toEqual(["action=DUNNO"]);
        // The first server goes without removing its socket (a crash): the second one replaces it.
        if (attempt === 2) await unix.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
