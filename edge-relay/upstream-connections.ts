/**
 * Connections to the upstream MTA, as nodemailer's SMTPConnection makes them: a message goes out as the bytes
 * the relay received (SMTPConnection dot-stuffs them on the way), never through nodemailer's message composer,
 * and with PIPELINING whenever the upstream offers it (MAIL FROM, RCPT TO and DATA in one write).
 *
 * UpstreamPool keeps up to upstream.maxConnections connections and hands each message to an idle one;
 * sendOnOwnConnection() opens a connection for one message and closes it after (upstream.xclient: the client is
 * announced first, xclient.ts says why such a connection cannot be pooled).
 */
import type { Readable } from "node:stream";
import SMTPConnection, {
  type SMTPConnectionCustomAuthHandler,
  type SMTPConnectionOptions,
  type SMTPConnectionSendInfo,
} from "nodemailer/lib/smtp-connection";
import type { UpstreamError } from "./upstream.ts";

/** What the relay hands the upstream: the envelope and the message as it goes on the wire (before dot-stuffing). */
export interface OutgoingMessage {
  envelope: { from: string; to: string[] };
  content: Readable | string;
}

export type SentInfo = SMTPConnectionSendInfo;

/** Connected, EHLO (and STARTTLS where offered or required) done; rejects with the connection's error. */
function connect(options: SMTPConnectionOptions): Promise<SMTPConnection> {
  const connection = new SMTPConnection(options);
  return new Promise((resolve, reject) => {
    // SMTPConnection reports a failed connect as an 'error' event; a late one (idle, pooled) must not crash the
    // process: every send reports its own failure through its callback.
    connection.on("error", reject);
    connection.connect((error) => {
      connection.off("error", reject);
      connection.on("error", ignore);
      if (error) {
        connection.close();
        reject(error);
      } else resolve(connection);
    });
  });
}

function ignore(): void {}

/**
 * A step of `connection` that answers through a callback (XCLIENT's login, RSET): SMTPConnection drops such a
 * callback when the connection closes under it (the upstream hangs up, the socket times out), so the connection's
 * end settles the step too, as a connection failure.
 */
function step(connection: SMTPConnection, start: (done: (error?: Error | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const ended = (): void =>
      reject(Object.assign(new Error("the upstream closed the connection"), { code: "ECONNECTION" }));
    connection.once("end", ended);
    start((error) => {
      connection.off("end", ended);
      if (error) reject(error);
      else resolve();
    });
  });
}

/**
 * The message's stream ended before it went out (the client left, the size limit, the relay shutting down):
 * nothing to send, and no reason to hold a connection while the upstream waits for bytes that will not come.
 */
function abandoned(content: OutgoingMessage["content"]): boolean {
  return typeof content !== "string" && content.destroyed;
}

const ABANDONED = "the message ended before it reached the upstream";

function sendOn(connection: SMTPConnection, message: OutgoingMessage): Promise<SentInfo> {
  return new Promise((resolve, reject) => {
    connection.send(message.envelope, message.content, (error, info) => (error ? reject(error) : resolve(info!)));
  });
}

/** A refusal of this message (MAIL, RCPT, DATA or the final dot) on a connection that is still in step. */
function isRefusal(error: UpstreamError): boolean {
  return (error.code === "EENVELOPE" || error.code === "EMESSAGE") && error.responseCode !== 421;
}

/** At most `size` holders at a time; the others wait their turn in order (upstream.maxConnections). */
export class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(size: number) {
    this.#free = size;
  }

  async hold<T>(work: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free -= 1;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free += 1;
    }
  }
}

export class UpstreamPool {
  readonly #options: SMTPConnectionOptions;
  /** Connections in use, at most upstream.maxConnections; a message waits its turn for one. */
  readonly #slots: Slots;
  /** Connected and between messages. */
  readonly #idle: SMTPConnection[] = [];
  #closed = false;

  constructor(options: SMTPConnectionOptions, maxConnections: number) {
    this.#options = options;
    this.#slots = new Slots(maxConnections);
  }

  /**
   * Sends on an idle connection or a new one. An idle connection the upstream (or the socket timeout) ended has
   * already left the pool (#watch); one that fails under a message fails that message (a 4xx to the client), never
   * a second try: the message may have reached the upstream before the failure.
   */
  send(message: OutgoingMessage): Promise<SentInfo> {
    return this.#slots.hold(async () => {
      if (this.#closed)
        throw Object.assign(new Error("the relay closed its upstream connections"), { code: "ECONNECTION" });
      if (abandoned(message.content)) throw new Error(ABANDONED);
      const connection = this.#idle.pop() ?? this.#watch(await connect(this.#options));
      try {
        const info = await sendOn(connection, message);
        this.#release(connection);
        return info;
      } catch (error) {
        // The slot is held until the reset is done, so maxConnections holds while the RSET is on the wire.
        if (isRefusal(error as UpstreamError)) await this.#resetAndRelease(connection);
        else connection.close();
        throw error;
      }
    });
  }

  /** Connects and says QUIT: what the health probe asks of the upstream. */
  async verify(): Promise<true> {
    (await connect(this.#options)).quit();
    return true;
  }

  /** The idle connections say QUIT; those in use are closed once their message is done. */
  close(): void {
    this.#closed = true;
    for (const connection of this.#idle.splice(0)) connection.quit();
  }

  /** The upstream (or the socket timeout) ends an idle connection: it is no longer handed out. */
  #watch(connection: SMTPConnection): SMTPConnection {
    connection.once("end", () => {
      const index = this.#idle.indexOf(connection);
      if (index !== -1) this.#idle.splice(index, 1);
    });
    return connection;
  }

  #release(connection: SMTPConnection): void {
    if (this.#closed) connection.quit();
    else this.#idle.push(connection);
  }

  /** After a refusal the transaction is reset (RSET) before the connection carries another message. */
  async #resetAndRelease(connection: SMTPConnection): Promise<void> {
    try {
      await step(connection, (done) => connection.reset(done));
      this.#release(connection);
    } catch {
      connection.close();
    }
  }
}

/** One connection for one message, closed after it: `announce` runs before MAIL FROM (XCLIENT, xclient.ts). */
export async function sendOnOwnConnection(
  options: SMTPConnectionOptions,
  announce: SMTPConnectionCustomAuthHandler,
  message: OutgoingMessage,
): Promise<SentInfo> {
  if (abandoned(message.content)) throw new Error(ABANDONED);
  const connection = await connect({ ...options, customAuth: { XCLIENT: announce } });
  let info: SentInfo;
  try {
    await step(connection, (done) => connection.login({ method: "XCLIENT" }, done));
    info = await sendOn(connection, message);
  } catch (error) {
    connection.close();
    throw error;
  }
  connection.quit();
  return info;
}
