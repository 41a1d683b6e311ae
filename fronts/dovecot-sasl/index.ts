/**
 * A Dovecot-SASL server: Postfix (`smtpd_sasl_type = dovecot`) and Exim (`driver = dovecot`) ask smtpgate whether a
 * login is good, over Dovecot's authentication protocol (docs/integrations/postfix.md), on TCP or a unix socket. Each server decides
 * for one smtpgate listener, through any Decider: in-process beside the API, or over HTTP from an edge process.
 *
 *   const sasl = createDovecotSaslServer({ decider, listener: "submission", log });
 *   await sasl.listen({ host: "127.0.0.1", port: 12345 });      // smtpd_sasl_path = inet:127.0.0.1:12345
 *   await sasl.listen({ path: "/run/smtpgate/auth", mode: 0o660 });
 */
import { randomBytes } from "node:crypto";
import { chmod, lstat, unlink } from "node:fs/promises";
import { createServer, type AddressInfo, type Server } from "node:net";
import type { Decider } from "../../contract/decider.ts";
import type { Logger } from "../../lib/json-lines.ts";
import { serveConnection, type ServedConnection } from "./connection.ts";

/** Dovecot's own expectation for a line ("currently expected to fit into 16384 bytes"). */
const MAX_LINE_BYTES = 16 * 1024;
const MAX_REQUESTS_IN_FLIGHT = 1024;
const MAX_CONNECTIONS = 1024;
const CLOSE_GRACE_MS = 5_000;

export interface DovecotSaslOptions {
  decider: Decider;
  /** The smtpgate listener this socket decides for (its auth profile, allowance and limits). */
  listener: string;
  log: Logger;
  /** A longer line closes the connection (default 16 KiB). */
  maxLineBytes?: number;
  /** Requests waiting for a CONT or a decision on one connection (default 1024); one more closes it. */
  maxRequestsInFlight?: number;
  /** Client connections at once (default 1024; Postfix opens one per smtpd process). */
  maxConnections?: number;
}

/** TCP `host:port`, or a unix socket with its permission bits (a stale socket file there is replaced). */
export type SaslListenAddress = { host: string; port: number } | { path: string; mode?: number };

export interface DovecotSaslServer {
  /** Starts listening; resolves with where (`127.0.0.1:12345` or the socket's path). */
  listen(address: SaslListenAddress): Promise<string>;
  /** The TCP port it listens on (after listen), for tests that asked for port 0. */
  readonly port: number | undefined;
  /** Connections open now. */
  readonly connections: number;
  /**
   * Stops listening; connections are reset once their requests in flight are answered, at the latest after
   * `graceMs` (default 5 s). A reset, not a close, so that Postfix reconnects at its next request.
   */
  close(graceMs?: number): Promise<void>;
}

export function createDovecotSaslServer(options: DovecotSaslOptions): DovecotSaslServer {
  const served = new Set<ServedConnection>();
  let connectionIds = 0;
  let closing = false;
  const server: Server = createServer(function onDovecotSaslConnection(socket) {
    if (closing) return socket.resetAndDestroy();
    connectionIds += 1;
    const connection = serveConnection(socket, {
      decider: options.decider,
      listener: options.listener,
      log: options.log,
      maxLineBytes: options.maxLineBytes ?? MAX_LINE_BYTES,
      maxRequestsInFlight: options.maxRequestsInFlight ?? MAX_REQUESTS_IN_FLIGHT,
      connectionId: connectionIds,
      cookie: randomBytes(16).toString("hex"),
    });
    served.add(connection);
    socket.once("close", () => served.delete(connection));
  });
  server.maxConnections = options.maxConnections ?? MAX_CONNECTIONS;

  return {
    async listen(address) {
      if ("path" in address) await removeStaleSocket(address.path);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen("path" in address ? { path: address.path } : address, () => {
          server.off("error", reject);
          resolve();
        });
      });
      if ("path" in address) {
        if (address.mode !== undefined) await chmod(address.path, address.mode);
        return address.path;
      }
      const bound = server.address() as AddressInfo;
      return `${bound.address}:${bound.port}`;
    },
    get port() {
      const bound = server.address();
      return bound !== null && typeof bound === "object" ? bound.port : undefined;
    },
    get connections() {
      return served.size;
    },
    async close(graceMs = CLOSE_GRACE_MS) {
      closing = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      const deadline = Date.now() + graceMs;
      while (served.size > 0) {
        for (const connection of served) if (connection.inFlight === 0) connection.reset("stopping");
        if (served.size === 0 || Date.now() >= deadline) break;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      for (const connection of served) connection.reset("stopped with requests in flight");
      await stopped;
    },
  };
}

/** A socket file left by a process that is gone would make listen fail with EADDRINUSE; anything else stays. */
async function removeStaleSocket(path: string): Promise<void> {
  try {
    if ((await lstat(path)).isSocket()) await unlink(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
}
