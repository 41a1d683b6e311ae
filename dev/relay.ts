// Starts the real edge relay on loopback in this process, for a test or the demo, with a server certificate from
// the slapd PKI, pointed at an API and a sink, with its log lines captured.
import { readFile } from "node:fs/promises";
import type { Decider } from "../contract/decider.ts";
import type { RelayConfigInput } from "../edge-relay/config.ts";
import { validateRelayConfig } from "../edge-relay/config.ts";
import type { LogRecord } from "../edge-relay/log.ts";
import { startRelay, type Relay } from "../edge-relay/relay.ts";
import type { ServerPki } from "./server-pki.ts";

export interface TestRelay extends Relay {
  logs: LogRecord[];
}

export async function startTestRelay(options: {
  apiUrl: string;
  apiToken: string;
  listener: string;
  upstreamPort: number;
  serverPki: ServerPki;
  overrides?: Partial<RelayConfigInput>;
  /** Decides instead of the API at apiUrl (which still serves the listener policy). */
  decider?: Decider;
}): Promise<TestRelay> {
  const logs: LogRecord[] = [];
  const config = validateRelayConfig(
    {
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
    },
    "test relay config",
  );
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
  });
  return { ...relay, logs };
}
