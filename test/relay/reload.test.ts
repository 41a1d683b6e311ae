// Reloading the relay (Relay.reload, settings.ts reloadFromFile, SIGHUP in main.ts): a new TLS key/certificate
// serves new handshakes while a session already open goes on; new limits reach new sessions; a new API address is
// used at once for a fresh policy; settings that need a restart are named and kept; an invalid new configuration
// is refused and logged and the running one stays. In-process relays, and the relay command for the signal.
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RelayConfigInput } from "../../edge-relay/config.ts";
import type { LogRecord } from "../../edge-relay/log.ts";
import { startRelay, type Relay } from "../../edge-relay/relay.ts";
import { readRelaySettings, reloadFromFile } from "../../edge-relay/settings.ts";
import { generateServerPki, type ServerPki } from "../../dev/server-pki.ts";
import { testRelayConfig } from "../../dev/relay.ts";
import { RawSmtp } from "./clients.ts";
import { sleep, waitFor } from "../../dev/wait.ts";
import { FakeListenerApi, LISTENER, listenerPolicy } from "./fake-listener-api.ts";
import { startSink, type Sink } from "../../dev/sink.ts";

const TOKEN_ENV = "SMTPGATE_RELOAD_TEST_TOKEN";
const TOKEN = "fake-api-token";

let dir: string;
let first: ServerPki;
let second: ServerPki;
let fake: FakeListenerApi;
let upstream: Sink;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "smtpgate-relay-reload-"));
  [first, second] = await Promise.all([
    generateServerPki(await mkdtemp(join(dir, "first-"))),
    generateServerPki(await mkdtemp(join(dir, "second-"))),
  ]);
  fake = await FakeListenerApi.start();
  fake.document = listenerPolicy("TRUSTED");
  upstream = await startSink();
  process.env[TOKEN_ENV] = TOKEN;
});

afterAll(async () => {
  delete process.env[TOKEN_ENV];
  await upstream?.close();
  await fake?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The test relay's configuration with `pki`, its API token from TOKEN_ENV, as a file would hold it. */
function configFor(pki: ServerPki, changes: Partial<RelayConfigInput> = {}): RelayConfigInput {
  return testRelayConfig({
    apiUrl: fake.url,
    listener: LISTENER,
    upstreamPort: upstream.port,
    serverPki: pki,
    overrides: { api: { url: fake.url, token: { env: TOKEN_ENV }, timeoutMs: 1_000 }, ...changes },
  });
}

async function writeConfig(name: string, config: unknown): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, typeof config === "string" ? config : JSON.stringify(config, null, 2));
  return path;
}

/** A relay started from the file configFor(first) would be, its log lines kept. */
async function startRelayFromFile(): Promise<Relay & { logs: LogRecord[] }> {
  const logs: LogRecord[] = [];
  const settings = await readRelaySettings(await writeConfig("start.json", configFor(first)));
  return { ...(await startRelay({ ...settings, log: (record) => logs.push(record) })), logs };
}

/** A STARTTLS session that trusts only `ca`: the EHLO reply inside TLS, or the handshake's error. */
async function startTlsTrusting(port: number, ca: string): Promise<string> {
  const client = await RawSmtp.connect(port);
  try {
    await client.ehlo();
    await client.startTls({ ca });
    return (await client.ehlo()).last;
  } catch (error) {
    return `failed: ${(error as Error).message}`;
  } finally {
    client.socket.destroy();
  }
}

describe("Relay.reload", () => {
  it("serves a new key and certificate to new handshakes while a session already in TLS goes on", async () => {
    const relay = await startRelayFromFile();
    try {
      const open = await RawSmtp.connect(relay.ports.starttls!);
      try {
        await open.ehlo();
        await open.startTls({ ca: first.caPem });
        await open.ehlo();

        const outcome = await relay.reload(
          await readRelaySettings(await writeConfig("second.json", configFor(second))),
        );
        expect(outcome).toEqual({ applied: ["tls"], needRestart: [] });

        expect(await startTlsTrusting(relay.ports.starttls!, second.caPem)).toMatch(/^250 /);
        expect(await startTlsTrusting(relay.ports.starttls!, first.caPem)).toMatch(/^failed: /);
        // Implicit TLS (465) too.
        const implicit = await RawSmtp.connect(relay.ports.implicitTls!, { implicitTls: { ca: second.caPem } });
        expect(implicit.greeting.last).toMatch(/^220 /);
        await implicit.quit();

        // The session from before the reload relays a message.
        expect((await open.send("MAIL FROM:<app@example.com>")).code).toBe(250);
        expect((await open.send("RCPT TO:<someone@example.net>")).code).toBe(250);
        expect((await open.send("DATA")).code).toBe(354);
        expect((await open.send("Subject: across a reload\r\n\r\nbody\r\n.")).last).toMatch(/^250 2\.0\.0 Ok: relayed/);
      } finally {
        await open.quit();
      }
    } finally {
      await relay.close();
    }
  });

  it("applies new limits to new sessions, uses a new API at once, and names the settings that need a restart", async () => {
    const relay = await startRelayFromFile();
    const other = await FakeListenerApi.start();
    other.document = listenerPolicy("BLOCKED");
    try {
      const next = configFor(first, {
        api: { url: other.url, token: { env: TOKEN_ENV }, timeoutMs: 1_000 },
        limits: { authFailureDelayMs: 0, commandDeadlineMs: 300 },
        upstream: { host: "127.0.0.1", port: upstream.port + 1 },
        listen: { starttls: { host: "127.0.0.1", port: 2525 } },
      });
      const before = other.served.length;
      const outcome = await relay.reload(await readRelaySettings(await writeConfig("limits.json", next)));
      expect(outcome).toEqual({ applied: ["api", "limits"], needRestart: ["listen", "upstream"] });
      expect(relay.logs).toContainEqual(expect.objectContaining({ level: "warn", settings: ["listen", "upstream"] }));
      // The policy came from the new API before reload() returned: loopback is BLOCKED there.
      expect(other.served.length).toBeGreaterThan(before);
      const blocked = await RawSmtp.connect(relay.ports.starttls!);
      expect(blocked.greeting.last).toBe("554 5.7.1 Access denied");
      blocked.socket.destroy();

      // The new command deadline (0.3 s instead of 30 s) reaches a new session.
      other.document = listenerPolicy("TRUSTED");
      other.etag = '"trusted-again"';
      await relay.policy.refresh();
      const slow = await RawSmtp.connect(relay.ports.starttls!);
      try {
        slow.write("NO");
        expect((await slow.read(2_000)).last).toBe("421 4.4.2 Command line not completed in time, closing connection");
      } finally {
        slow.socket.destroy();
      }
    } finally {
      await relay.close();
      await other.close();
    }
  });

  it("refuses an invalid new configuration, or a key that does not fit its certificate, and keeps the running one", async () => {
    const relay = await startRelayFromFile();
    const logs: LogRecord[] = [];
    try {
      const invalid = await writeConfig("invalid.yaml", "listener: edge\nlimits: { maxClients: -1 }\n");
      await reloadFromFile(relay, invalid, (record) => logs.push(record));
      const mismatched = await writeConfig(
        "mismatched.json",
        configFor(first, { tls: { keyFile: second.keyFile, certFile: first.certFile } }),
      );
      await reloadFromFile(relay, mismatched, (record) => logs.push(record));
      const refusals = logs.filter(
        (record) => record.msg === "reload refused: the running configuration stays in force",
      );
      expect(refusals).toHaveLength(2);
      expect(refusals[0]).toMatchObject({
        level: "error",
        config: invalid,
        error: expect.stringMatching(/maxClients/),
      });
      expect(refusals[1]).toMatchObject({ level: "error", config: mismatched });
      expect(relay.logs.map((record) => record.msg)).not.toContain("configuration reloaded");
      // Still the first certificate.
      expect(await startTlsTrusting(relay.ports.starttls!, first.caPem)).toMatch(/^250 /);
    } finally {
      await relay.close();
    }
  });
});

describe("SIGHUP to the relay command", () => {
  it("reloads the configuration file and the TLS files, and refuses a broken file without stopping", async () => {
    const path = await writeConfig("relay.json", configFor(first));
    const child = spawn(process.execPath, ["edge-relay/main.ts", "--config", path], {
      cwd: join(import.meta.dirname, "..", ".."),
      env: { ...process.env, [TOKEN_ENV]: TOKEN },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const lines: LogRecord[] = [];
    let partial = "";
    child.stdout.on("data", (chunk: Buffer) => {
      partial += chunk.toString("utf8");
      const complete = partial.split("\n");
      partial = complete.pop() ?? "";
      for (const line of complete) if (line) lines.push(JSON.parse(line) as LogRecord);
    });
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    const logged = (msg: string) =>
      waitFor(() => lines.some((record) => record.msg === msg), { timeoutMs: 10_000, what: msg }).then(() => true);
    try {
      expect(await logged("relay listening")).toBe(true);
      const port = (lines.find((record) => record.msg === "relay listening")?.ports as { starttls: number }).starttls;
      expect(await startTlsTrusting(port, first.caPem)).toMatch(/^250 /);

      await writeConfig("relay.json", configFor(second));
      child.kill("SIGHUP");
      expect(await logged("configuration reloaded")).toBe(true);
      expect(await startTlsTrusting(port, second.caPem)).toMatch(/^250 /);

      await writeFile(path, (await readFile(path, "utf8")).replace('"listener"', '"listner"'));
      child.kill("SIGHUP");
      expect(await logged("reload refused: the running configuration stays in force")).toBe(true);
      await sleep(100);
      expect(child.exitCode).toBeNull();
      expect(await startTlsTrusting(port, second.caPem)).toMatch(/^250 /);
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  });
});
