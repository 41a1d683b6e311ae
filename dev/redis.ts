// A private redis-server for a test: its own loopback port, no persistence, stopped by its PID. For the
// brute-force store's tests (api/limiter/redis-store.ts); Debian's redis-server package (scripts/setup.sh).
import { spawn } from "node:child_process";
import { connect } from "node:net";
import { freePorts } from "./ports.ts";
import { killOnExit } from "./processes.ts";
import { waitFor } from "./wait.ts";

export interface RedisInstance {
  url: string;
  port: number;
  /** SIGTERM and wait for the exit. Idempotent. */
  stop(): Promise<void>;
}

export async function startRedis(): Promise<RedisInstance> {
  const [port = 0] = await freePorts(1);
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  killOnExit(child);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await waitFor(() => canConnect(port), { timeoutMs: 10_000, what: `redis-server on port ${port}` });
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined)
        process.kill(child.pid, "SIGTERM");
      await exited;
    },
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}
