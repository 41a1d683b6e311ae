// The relay when its neighbours fail, and when clients guess: decision API down (454, never an accept), upstream
// down or refusing (4xx/5xx with the reason, never a 250 for mail the upstream does not have), the failed-AUTH
// delay and limit, and the start (no policy, no listening: it waits for the API; a configuration error exits 2).
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApi, TEST_TOKEN, type TestApi } from "../../dev/api.ts";
import { freePort } from "../../dev/ports.ts";
import { startTestRelay, type TestRelay } from "../../dev/relay.ts";
import { startSink, type Sink } from "../../dev/sink.ts";
import { SEED } from "../../dev/slapd/index.ts";
import { stackApiConfig } from "../../dev/stack.ts";
import { RawSmtp, swaks, type ToolResult } from "./clients.ts";
import { sleep } from "../../dev/wait.ts";
import { ALICE, STACK_LISTENERS, startRelayFixture, type RelayFixture } from "./fixture.ts";

let fx: RelayFixture;

beforeAll(async () => {
  fx = await startRelayFixture({ listeners: [STACK_LISTENERS.password, STACK_LISTENERS.certificate] });
});

afterAll(async () => {
  await fx?.close();
});

const { password: PASSWORD, certificate: CERT_ONLY } = STACK_LISTENERS;
const AUTH_INVALID = "535 5.7.8 Authentication credentials invalid";
const TEMPFAIL = "454 4.7.0 Temporary authentication failure";

/** Another relay of `listener` beside the stack's, with its own API, upstream or limits. */
function extraRelay(
  listener: string,
  options: { apiUrl?: string; upstreamPort?: number; limits?: Record<string, number> } = {},
): Promise<TestRelay> {
  return startTestRelay({
    apiUrl: options.apiUrl ?? fx.stack.api.url,
    apiToken: TEST_TOKEN,
    listener,
    upstreamPort: options.upstreamPort ?? fx.stack.sink.port,
    serverPki: fx.stack.slapd.pki,
    ...(options.limits ? { overrides: { limits: { authFailureDelayMs: 0, ...options.limits } } } : {}),
  });
}

/** swaks as alice through flow B to an outside address. */
function aliceSends(port: number, password: string = ALICE.password) {
  return swaks(
    port,
    [
      "--from",
      ALICE.address,
      "--to",
      "friend@other.example",
      "--tls",
      "--auth",
      "PLAIN",
      "--auth-user",
      ALICE.user,
      "--auth-password",
      password,
    ],
    { ca: fx.caFile },
  );
}

describe("decision API unreachable after the relay started", () => {
  let api: TestApi;
  let password: TestRelay;
  let certificate: TestRelay;

  beforeAll(async () => {
    // A second API of the same configuration, so that closing it leaves the rest of the file alone.
    api = await startTestApi(stackApiConfig(fx.stack.slapd, fx.stack.pki, fx.stack.crls.baseUrl), {
      BIND_PW: SEED.servicePassword,
    });
    password = await extraRelay(PASSWORD, { apiUrl: api.url });
    certificate = await extraRelay(CERT_ONLY, { apiUrl: api.url });
    // Prove the pair works before the API goes away.
    const client = await RawSmtp.connect(password.ports.starttls!);
    const reply = await client.submissionLogin(await fx.tls(), ALICE.user, ALICE.password);
    await client.quit();
    if (reply.code !== 235) throw new Error(`setup: ${reply.last}`);
    await api.close();
  });

  afterAll(async () => {
    await password?.close();
    await certificate?.close();
  });

  it("answers AUTH with 454 4.7.0 Temporary authentication failure, never 235, and sends nothing", async () => {
    const before = fx.stack.sink.messages.length;
    const result = await aliceSends(password.ports.starttls!);
    expect(result.replies).toContain(TEMPFAIL);
    expect(result.replies.some((line) => line.startsWith("235"))).toBe(false);
    expect(result.code).not.toBe(0);
    expect(fx.sunkSince(before)).toHaveLength(0);
    expect(password.logs.map((record) => String(record.msg))).toContainEqual(
      expect.stringMatching(/^SMTP Auth: \(ICID \d+\) API unavailable: /),
    );
  });

  it("keeps answering 454 (a temporary failure is not a failed guess) and never lets MAIL through", async () => {
    const client = await RawSmtp.connect(password.ports.starttls!);
    try {
      expect((await client.submissionLogin(await fx.tls(), ALICE.user, ALICE.password)).last).toBe(TEMPFAIL);
      for (let attempt = 0; attempt < 3; attempt++)
        expect((await client.authPlain(ALICE.user, ALICE.password)).last).toBe(TEMPFAIL);
      expect((await client.send("MAIL FROM:<alice@example.com>")).last).toBe("530 5.7.0 Authentication required");
    } finally {
      await client.quit();
    }
  });

  it("answers a client certificate with 454 4.7.0 after the handshake (flow A), then closes", async () => {
    const client = await RawSmtp.connect(certificate.ports.starttls!);
    await client.ehlo();
    await client.startTls(await fx.tls("alice"));
    expect((await client.read()).last).toBe(TEMPFAIL);
    await client.closed;
    expect(client.isClosed).toBe(true);
  });
});

describe("upstream down or refusing", () => {
  let deadSink: Sink;
  let relay: TestRelay;

  beforeAll(async () => {
    deadSink = await startSink();
    relay = await extraRelay(PASSWORD, { upstreamPort: deadSink.port });
    await deadSink.close();
  });

  afterAll(async () => {
    await relay?.close();
    fx.stack.sink.refuse(null);
  });

  it("answers DATA with 451 4.4.1 when the upstream is down, and reports nothing as accepted", async () => {
    const result = await aliceSends(relay.ports.starttls!);
    expect(result.replies).toContain("235 2.7.0 Authentication succeeded");
    expect(result.replies).toContain("354 End data with <CR><LF>.<CR><LF>");
    expect(result.replies).toContain("451 4.4.1 Upstream server unavailable, try again later");
    expect(result.replies.some((line) => /^250 2\.0\.0 /.test(line))).toBe(false);
    expect(deadSink.messages).toHaveLength(0);
    expect(relay.logs.map((record) => String(record.msg))).toContainEqual(
      expect.stringMatching(/^ICID \d+ Upstream delivery failed: /),
    );
  });

  it("passes a permanent upstream refusal on as a 5xx carrying the upstream's reason", async () => {
    const before = fx.stack.sink.messages.length;
    fx.stack.sink.refuse({ code: 550, text: "5.1.1 no such user" });
    const result = await aliceSends(fx.port(PASSWORD));
    fx.stack.sink.refuse(null);
    expect(result.replies).toContain("550 5.1.1 Upstream refused the message: no such user");
    expect(result.replies.some((line) => /^250 2\.0\.0 /.test(line))).toBe(false);
    expect(fx.sunkSince(before)).toHaveLength(0);
  });

  it("passes a permanent refusal of the recipient (at RCPT upstream) on as a 5xx with the reason", async () => {
    const before = fx.stack.sink.messages.length;
    fx.stack.sink.refuse({ code: 550, text: "5.1.1 mailbox unavailable", at: "rcpt" });
    const result = await aliceSends(fx.port(PASSWORD));
    fx.stack.sink.refuse(null);
    expect(result.replies).toContain("550 5.1.1 Upstream refused the message: mailbox unavailable");
    expect(result.replies.some((line) => /^250 2\.0\.0 /.test(line))).toBe(false);
    expect(fx.sunkSince(before)).toHaveLength(0);
  });

  it("passes a temporary upstream refusal on as 451 4.4.2 with the upstream's reason", async () => {
    const before = fx.stack.sink.messages.length;
    fx.stack.sink.refuse({ code: 452, text: "4.3.1 insufficient system storage" });
    const result = await aliceSends(fx.port(PASSWORD));
    fx.stack.sink.refuse(null);
    expect(result.replies).toContain(
      "451 4.4.2 Upstream server failed during delivery, try again later: insufficient system storage",
    );
    expect(fx.sunkSince(before)).toHaveLength(0);
  });

  it("relays again once the upstream accepts", async () => {
    const before = fx.stack.sink.messages.length;
    const result = await aliceSends(fx.port(PASSWORD));
    expect(result.replies.at(-2)).toMatch(/^250 2\.0\.0 Ok: relayed /);
    expect(fx.sunkSince(before)).toHaveLength(1);
  });
});

describe("failed AUTH: delay and limit", () => {
  it("answers a failed AUTH only after authFailureDelayMs (1000 ms), and a good one at once", async () => {
    const slow = await extraRelay(PASSWORD, { limits: { authFailureDelayMs: 1000 } });
    try {
      const client = await RawSmtp.connect(slow.ports.starttls!);
      try {
        await client.ehlo();
        await client.startTls(await fx.tls());
        await client.ehlo();
        let started = Date.now();
        expect((await client.authPlain(ALICE.user, "wrong-password")).last).toBe(AUTH_INVALID);
        expect(Date.now() - started).toBeGreaterThanOrEqual(900);
        started = Date.now();
        expect((await client.authPlain(ALICE.user, ALICE.password)).last).toBe("235 2.7.0 Authentication succeeded");
        expect(Date.now() - started).toBeLessThan(900);
      } finally {
        await client.quit();
      }
    } finally {
      await slow.close();
    }
  });

  it("answers the third failed AUTH with 421 4.7.0 and closes the connection", async () => {
    const client = await RawSmtp.connect(fx.port(PASSWORD));
    expect((await client.submissionLogin(await fx.tls(), ALICE.user, "guess-1")).last).toBe(AUTH_INVALID);
    expect((await client.authPlain(ALICE.user, "guess-2")).last).toBe(AUTH_INVALID);
    expect((await client.authPlain(ALICE.user, "guess-3")).last).toBe(
      "421 4.7.0 Too many authentication failures, closing connection",
    );
    await client.closed;
    expect(client.isClosed).toBe(true);
  });

  it("does not let the right password in after the limit on the same connection", async () => {
    const client = await RawSmtp.connect(fx.port(PASSWORD));
    await client.submissionLogin(await fx.tls(), ALICE.user, "guess-1");
    await client.authPlain(ALICE.user, "guess-2");
    await client.authPlain(ALICE.user, "guess-3");
    client.write(`AUTH PLAIN ${Buffer.from(`\u0000alice\u0000${ALICE.password}`).toString("base64")}\r\n`);
    await client.closed;
    expect(client.unread()).not.toContain("235");
  });
});

describe("start-up: waiting for the API, refusing a configuration error", () => {
  it("does not listen while the API is not listening yet, retries with backoff (each retry a warn with the reason), and starts once it answers", async () => {
    const port = await freePort();
    const healthPort = await freePort();
    const starting = startTestRelay({
      apiUrl: `http://127.0.0.1:${port}`,
      apiToken: TEST_TOKEN,
      listener: PASSWORD,
      upstreamPort: fx.stack.sink.port,
      serverPki: fx.stack.slapd.pki,
      startupBackoff: { firstDelayMs: 100, maxDelayMs: 400 },
      overrides: {
        listen: {
          starttls: { host: "127.0.0.1", port: 0 },
          implicitTls: { host: "127.0.0.1", port: 0 },
          health: { host: "127.0.0.1", port: healthPort },
        },
      },
    });
    let started = false;
    void starting.then(() => (started = true));
    await sleep(1_200);
    expect(started).toBe(false);
    // Waiting is not dying: an orchestrator's liveness probe sees it alive, its readiness probe not ready yet.
    const live = await fetch(`http://127.0.0.1:${healthPort}/livez`);
    expect(live.status).toBe(200);
    const ready = await fetch(`http://127.0.0.1:${healthPort}/healthz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { status: string }).status).toBe("starting");
    // The API comes up on the port the relay was told about (systemd started both at once).
    const api = await startTestApi(
      stackApiConfig(fx.stack.slapd, fx.stack.pki, fx.stack.crls.baseUrl),
      { BIND_PW: SEED.servicePassword },
      port,
    );
    try {
      const relay = await starting;
      try {
        const retries = relay.logs.filter(
          (record) => record.msg === "cannot load the listener policy yet; not listening until it loads",
        );
        // 100, 200, 400, 400 ... ms: at least four failures in the 1.2 s before the API came up.
        expect(retries.length).toBeGreaterThanOrEqual(4);
        expect(retries.map((record) => record.retryInMs).slice(0, 4)).toEqual([100, 200, 400, 400]);
        expect(retries[0]).toMatchObject({
          level: "warn",
          listener: PASSWORD,
          apiUrl: `http://127.0.0.1:${port}`,
          attempt: 1,
          error: expect.stringMatching(/ECONNREFUSED|connect/),
        });
        expect(relay.logs).toContainEqual(expect.objectContaining({ level: "info", msg: "listener policy loaded" }));
        const client = await RawSmtp.connect(relay.ports.starttls!);
        expect(client.greeting.last).toMatch(/^220 relay\.test ESMTP/);
        await client.quit();
      } finally {
        await relay.close();
      }
    } finally {
      await api.close();
    }
  });

  it("refuses to start for a listener the API does not know", async () => {
    await expect(extraRelay("no-such-listener")).rejects.toThrow(
      /^cannot load the policy of listener "no-such-listener" from http:\/\/127\.0\.0\.1:\d+: GET \/v1\/listeners\/no-such-listener: HTTP 404.*; set listener to one of the API's listeners, or fix api\.url$/,
    );
  });

  it("the relay command keeps waiting while the API is unreachable, never exits 2 for it, and exits 0 on SIGTERM during the wait", async () => {
    const port = await freePort();
    const result = await relayCommand(port, PASSWORD, {
      stopWhen: (stdout) => stdout.split("\n").filter((line) => line.includes('"attempt":')).length >= 2,
    });
    expect(result.code).toBe(0);
    expect(result.stderr).toBe("");
    const lines = result.stdout
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: "warn",
        msg: "cannot load the listener policy yet; not listening until it loads",
        attempt: 1,
        retryInMs: 500,
        error: expect.stringMatching(/ECONNREFUSED|connect/),
      }),
    );
    expect(lines.at(-1)).toMatchObject({ level: "info", signal: "SIGTERM" });
  });

  it("the relay command exits 2 with a clear message for an unknown listener", async () => {
    const result = await relayCommand(Number(new URL(fx.stack.api.url).port), "no-such-listener");
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^smtpgate-relay: cannot load the policy of listener "no-such-listener" .*HTTP 404/);
  });

  it("the relay command exits 2 naming api.token when the API refuses the token (401)", async () => {
    const result = await relayCommand(Number(new URL(fx.stack.api.url).port), PASSWORD, { token: "not-a-token" });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /^smtpgate-relay: cannot load the policy of listener "password" from http:\/\/127\.0\.0\.1:\d+: GET \/v1\/listeners\/password: HTTP 401.*; set api\.token to a token the API's configuration accepts\n$/,
    );
    expect(result.stderr + result.stdout).not.toContain("not-a-token");
  });
});

/** Runs `node edge-relay/main.ts --config FILE` against an API on `apiPort` and waits for it to exit. */
async function relayCommand(
  apiPort: number,
  listener: string,
  options: { token?: string; stopWhen?: (stdout: string) => boolean } = {},
): Promise<ToolResult> {
  const config = join(fx.dir, `relay-${listener}-${apiPort}.yaml`);
  const pki = fx.stack.slapd.pki;
  await writeFile(
    config,
    [
      `listener: ${listener}`,
      "api:",
      `  url: http://127.0.0.1:${apiPort}`,
      "  token: { env: SMTPGATE_RELAY_TEST_TOKEN }",
      "  timeoutMs: 2000",
      "tls:",
      `  keyFile: ${pki.keyFile}`,
      `  certFile: ${pki.certFile}`,
      "listen:",
      "  starttls: { host: 127.0.0.1, port: 0 }",
      "upstream:",
      `  host: 127.0.0.1`,
      `  port: ${fx.stack.sink.port}`,
      "",
    ].join("\n"),
  );
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["edge-relay/main.ts", "--config", config], {
      cwd: join(import.meta.dirname, "..", ".."),
      env: { ...process.env, SMTPGATE_RELAY_TEST_TOKEN: options.token ?? TEST_TOKEN },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let stopping = false;
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8");
      if (!stopping && options.stopWhen?.(stdout)) {
        stopping = true;
        child.kill("SIGTERM");
      }
    });
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    // A relay that started would run until stopped: that is a failure here.
    const timer = setTimeout(() => child.kill("SIGTERM"), 15_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
