// Starts the real edge relay on loopback in this process, for a test or the demo, with a server certificate from
// the slapd PKI, pointed at an API and a sink, with its log lines captured.
import { readFile } from "node:fs/promises";
import type { Decider } from "../contract/decider.ts";
import type { RelayConfigInput } from "../edge-relay/config.ts";
import { validateRelayConfig } from "../edge-relay/config.ts";
import type { LogRecord } from "../edge-relay/log.ts";
import { startRelay, type Relay } from "../edge-relay/relay.ts";
import type { StartupBackoff } from "../edge-relay/startup.ts";
import type { ServerPki } from "./server-pki.ts";

export interface TestRelay extends Relay {
  logs: LogRecord[];
}

export interface TestRelayOptions {
  apiUrl: string;
  apiToken: string;
  listener: string;
  upstreamPort: number;
  serverPki: ServerPki;
  overrides?: Partial<RelayConfigInput>;
  /** Decides instead of the API at apiUrl (which still serves the listener policy). */
  decider?: Decider;
  /** Passed to startRelay: how the policy load is retried while the API cannot answer. */
  startupBackoff?: StartupBackoff;
}

/** The test relay's configuration, as a file would hold it: loopback, ports 0, health on, no AUTH delay. */
export function testRelayConfig(
  options: Omit<TestRelayOptions, "apiToken" | "decider" | "startupBackoff">,
): RelayConfigInput {
  return {
    listener: options.listener,
    hostname: "relay.test",
    api: { url: options.apiUrl, token: { env: "UNUSED" }, timeoutMs: 2000 },
    tls: { keyFile: options.serverPki.keyFile, certFile: options.serverPki.certFile },
    listen: {
      starttls: { host: "127.0.0.1", port: 0 },
      implicitTls: { host: "127.0.0.1", port: 0 },
      health: { host: "127.0.0.1", port: 0 },
    },
    upstream: { host: "127.0.0.1", port: options.upstreamPort, timeoutMs: 5000 },
    limits: { authFailureDelayMs: 0 },
    ...options.overrides,
  };
}

export async function startTestRelay(options: TestRelayOptions): Promise<TestRelay> {
  const logs: LogRecord[] = [];
  const config = validateRelayConfig(testRelayConfig(options), "test relay config");
  const relay = await startRelay({
    config,
    apiToken: options.apiToken,
    tls: {
      key: await readFile(options.serverPki.keyFile, "utf8"),
      cert: await readFile(options.serverPki.certFile, "utf8"),
    },
    ...(config.upstream.tls.caFile ? { upstreamCa: await readFile(config.upstream.tls.caFile, "utf8") } : {}),
    log: (record) => logs.push(record),
    ...(options.decider ? { decider: options.decider } : {}),
    ...(options.startupBackoff ? { startupBackoff: options.startupBackoff } : {}),
  });
  return { ...relay, logs };
}
