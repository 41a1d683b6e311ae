/**
 * A Postfix policy delegation server (`check_policy_service`) for one smtpgate listener, on a TCP address or a
 * unix socket. The protocol is protocol.ts, the decision policy.ts; this is the socket around them:
 *
 *   const server = createPostfixPolicyServer({ listener: "submission", listen: { host: "127.0.0.1", port: 10040 },
 *     decider, hostAccessTable: () => table, log });
 *   await server.listen();   // main.cf: check_policy_service inet:127.0.0.1:10040
 *
 * Many requests per connection, answered in order (Postfix keeps its connection for up to
 * smtpd_policy_service_max_ttl). A request must arrive whole within `requestTimeoutMs` of its first byte and stay
 * under `maxRequestBytes`; a connection idle for `idleTimeoutMs` is closed. Malformed input is logged and closes
 * the connection without an answer (the README: "in case of trouble ... log a warning and disconnect"); it is
 * never answered OK, and never takes the server down.
 */
import { chmod, lstat, unlink } from "node:fs/promises";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import type { MtaFactsDecider } from "../../contract/decider.ts";
import type { HostAccessTable } from "../../contract/host-access-table.ts";
import type { Logger } from "../../lib/json-lines.ts";
import { decidePolicy } from "./policy.ts";
import { formatAction, MAX_REQUEST_BYTES, PolicyRequestReader, type PolicyAttributes } from "./protocol.ts";

/** A TCP address, or a unix socket with its permission bits (contract/fronts-config.ts). */
export type PolicySocket = { host: string; port: number } | { path: string; mode?: number };

export interface PostfixPolicyServerOptions {
  /** The smtpgate listener this server decides for. */
  listener: string;
  listen: PolicySocket;
  decider: MtaFactsDecider;
  /** The listener's host access table as it is now. */
  hostAccessTable: () => HostAccessTable;
  log: Logger;
  /** Default 16 KiB. */
  maxRequestBytes?: number;
  /** From a request's first byte to its empty line; default 10 s. */
  requestTimeoutMs?: number;
  /** Between requests; default 1,000 s (Postfix's smtpd_policy_service_max_ttl, so Postfix closes first). */
  idleTimeoutMs?: number;
  /** Requests read but not yet answered on one connection (a pipelining client); default 64. */
  maxQueuedRequests?: number;
  /** On close, how long answers in progress may take; default 5 s. */
  closeGraceMs?: number;
}

export interface PostfixPolicyServer {
  /** Binds the socket; resolves with where it listens (`127.0.0.1:10040` or the socket's path). */
  listen(): Promise<string>;
  /** Stops accepting, lets answers in progress finish (closeGraceMs), then closes every connection. */
  close(): Promise<void>;
}

const DEFAULTS = { requestTimeoutMs: 10_000, idleTimeoutMs: 1_000_000, maxQueuedRequests: 64, closeGraceMs: 5_000 };

export function createPostfixPolicyServer(options: PostfixPolicyServerOptions): PostfixPolicyServer {
  const settings = { ...DEFAULTS, ...options };
  const connections = new Set<PolicyConnection>();
  let nextConnection = 0;
  const server: Server = createServer(function onPolicyConnection(socket) {
    const connection = new PolicyConnection(socket, (nextConnection += 1), settings);
    connections.add(connection);
    socket.once("close", () => connections.delete(connection));
  });
  server.on("error", (error) =>
    options.log({ level: "error", msg: "policy server error", listener: options.listener, error: error.message }),
  );
  const where = "path" in options.listen ? options.listen.path : `${options.listen.host}:${options.listen.port}`;

  return {
    async listen() {
      const socket = options.listen;
      if ("path" in socket) await removeStaleSocket(socket.path);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        const done = (): void => {
          server.off("error", reject);
          resolve();
        };
        if ("path" in socket) server.listen(socket.path, done);
        else server.listen(socket.port, socket.host, done);
      });
      let bound = where;
      if ("path" in socket) await chmod(socket.path, socket.mode ?? 0o660);
      else bound = `${socket.host}:${(server.address() as AddressInfo).port}`;
      options.log({ level: "info", msg: "policy server listening", listener: options.listener, listen: bound });
      return bound;
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const connection of connections) connection.endWhenIdle();
      const deadline = Date.now() + settings.closeGraceMs;
      while ([...connections].some((connection) => connection.busy) && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 20));
      for (const connection of connections) connection.destroy();
      if (server.listening) await closed;
    },
  };
}

/** A unix socket left by a process that is gone is replaced; anything else at the path is left alone. */
async function removeStaleSocket(path: string): Promise<void> {
  const found = await lstat(path).catch(() => null);
  if (found?.isSocket()) await unlink(path);
}

type Settings = Required<Omit<PostfixPolicyServerOptions, "maxRequestBytes">> & { maxRequestBytes?: number };

/** One Postfix connection: requests read, queued and answered one at a time, in order. */
class PolicyConnection {
  readonly #socket: Socket;
  readonly #id: number;
  readonly #settings: Settings;
  readonly #reader: PolicyRequestReader;
  readonly #queue: PolicyAttributes[] = [];
  #requests = 0;
  #answering = false;
  #ending = false;
  /** A problem was found: answer what is queued, then close without reading more. */
  #closing = false;
  #requestTimer: NodeJS.Timeout | undefined;

  constructor(socket: Socket, id: number, settings: Settings) {
    this.#socket = socket;
    this.#id = id;
    this.#settings = settings;
    this.#reader = new PolicyRequestReader(settings.maxRequestBytes ?? MAX_REQUEST_BYTES);
    socket.setTimeout(settings.idleTimeoutMs, () => this.#drop("idle past the timeout", "info"));
    socket.on("data", (chunk: Buffer) => this.#data(chunk));
    // A peer that goes away mid-answer is no concern of anyone's: its socket is gone.
    socket.on("error", () => socket.destroy());
    socket.once("close", () => clearTimeout(this.#requestTimer));
  }

  get busy(): boolean {
    return this.#answering || this.#queue.length > 0;
  }

  endWhenIdle(): void {
    this.#ending = true;
    if (!this.busy) this.#socket.end();
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #data(chunk: Buffer): void {
    if (this.#closing) return;
    for (const item of this.#reader.push(chunk)) {
      // What came complete before the problem is still answered; then the connection closes.
      if (!item.ok) return this.#drop(item.problem, "warn", { afterAnswers: true });
      this.#queue.push(item.attributes);
      if (this.#queue.length > this.#settings.maxQueuedRequests)
        return this.#drop(`more than ${this.#settings.maxQueuedRequests} requests waiting for answers`, "warn");
    }
    // The deadline runs from a request's first byte until it is complete.
    if (this.#reader.midRequest && this.#requestTimer === undefined)
      this.#requestTimer = setTimeout(
        () => this.#drop("a request not finished in time", "warn"),
        this.#settings.requestTimeoutMs,
      );
    else if (!this.#reader.midRequest) {
      clearTimeout(this.#requestTimer);
      this.#requestTimer = undefined;
    }
    void this.#answerQueued();
  }

  async #answerQueued(): Promise<void> {
    if (this.#answering) return;
    this.#answering = true;
    try {
      for (let attributes = this.#queue.shift(); attributes; attributes = this.#queue.shift()) {
        if (this.#socket.destroyed) return;
        this.#requests += 1;
        const action = await this.#answer(attributes);
        if (this.#socket.destroyed) return;
        this.#socket.write(formatAction(action));
      }
    } finally {
      this.#answering = false;
      if (this.#closing) this.#socket.destroy();
      else if (this.#ending && !this.#socket.destroyed) this.#socket.end();
    }
  }

  async #answer(attributes: PolicyAttributes): Promise<string> {
    const { listener, decider, hostAccessTable, log } = this.#settings;
    const session = `policy-${this.#id}.${this.#requests}`;
    const outcome = await decidePolicy(attributes, { listener, decider, hostAccessTable, session }).catch(
      (error: unknown) => ({
        // A bug must not answer OK, nor leave Postfix waiting: a temporary refusal, and the log says why.
        action: "DEFER_IF_PERMIT 4.7.0 Temporary authentication failure",
        decidedBy: "error",
        identity: null,
        note: String(error),
        warnings: [],
      }),
    );
    const fields = {
      listener,
      session,
      state: attributes.get("protocol_state"),
      client: attributes.get("client_address"),
      sender: attributes.get("sender"),
      recipient: attributes.get("recipient"),
      queueId: attributes.get("queue_id") || undefined,
    };
    for (const warning of outcome.warnings)
      log({
        level: "warn",
        msg: "policy warning",
        ...fields,
        identity: outcome.identity,
        check: warning.check,
        note: warning.note,
      });
    log({
      level: outcome.decidedBy === "error" ? "error" : outcome.action.startsWith("DEFER") ? "warn" : "info",
      msg: "policy request",
      ...fields,
      identity: outcome.identity,
      action: outcome.action,
      decidedBy: outcome.decidedBy,
      ...("decisionId" in outcome ? { decisionId: outcome.decisionId } : {}),
      ...("temporary" in outcome && outcome.temporary ? { temporary: true } : {}),
      ...(outcome.note ? { note: outcome.note } : {}),
    });
    return outcome.action;
  }

  #drop(why: string, level: "info" | "warn", { afterAnswers = false } = {}): void {
    if (this.#socket.destroyed || this.#closing) return;
    this.#settings.log({
      level,
      msg: "policy connection closed",
      listener: this.#settings.listener,
      connection: this.#id,
      remote: this.#socket.remoteAddress ?? "unix",
      reason: why,
      requests: this.#requests,
    });
    clearTimeout(this.#requestTimer);
    if (afterAnswers && this.busy) {
      this.#closing = true;
      this.#socket.pause();
      void this.#answerQueued();
      return;
    }
    this.#queue.length = 0;
    this.#socket.destroy();
  }
}
