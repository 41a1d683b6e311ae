// Memory per idle relay connection: the RSS of a fresh relay process, then with `count` connections open, each past
// its greeting, so the heap the session runs grew does not hide the cost of a connection.
import net from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { waitFor } from "../../dev/wait.ts";
import { rssBytes } from "./measure.ts";

// There is no event for "the heap has settled": after start-up and after the connections, the RSS is read a
// second later.
const SETTLE_MS = 1000;
// Connections are opened in batches with a pause between, so the listen backlog does not overflow.
const BATCH = 100;
const BATCH_PAUSE_MS = 50;
const GREETING_TIMEOUT_MS = 10_000;

export interface IdleMemory {
  idleConnectionsGreeted: number;
  relayRssIdleBytes: number;
  relayRssWithIdleBytes: number;
  relayBytesPerIdleConnection: number;
}

export async function measureIdleConnections(relay: { pid: number; port: number }, count: number): Promise<IdleMemory> {
  await delay(SETTLE_MS);
  const relayIdle = rssBytes(relay.pid);
  const idle: net.Socket[] = [];
  let greeted = 0;
  for (let i = 0; i < count; i += 1) {
    const socket = net.connect({ port: relay.port, host: "127.0.0.1" });
    socket.once("data", (chunk: Buffer) => {
      if (chunk.toString().startsWith("220")) greeted += 1;
    });
    socket.on("error", () => {});
    idle.push(socket);
    if (i % BATCH === BATCH - 1) await delay(BATCH_PAUSE_MS);
  }
  // Those not greeted in time are reported as such (idleConnectionsGreeted), not an error.
  await waitFor(() => greeted >= count, { timeoutMs: GREETING_TIMEOUT_MS, intervalMs: 100 }).catch(() => {});
  await delay(SETTLE_MS);
  const relayWithIdle = rssBytes(relay.pid);
  for (const socket of idle) socket.destroy();
  return {
    idleConnectionsGreeted: greeted,
    relayRssIdleBytes: relayIdle,
    relayRssWithIdleBytes: relayWithIdle,
    relayBytesPerIdleConnection: Math.round((relayWithIdle - relayIdle) / Math.max(1, greeted)),
  };
}
