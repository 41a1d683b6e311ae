/**
 * smtp-server, adjusted for the relay's own server instances and never for the process: AdaptedSmtpServer's
 * connect() creates each SMTPConnection as smtp-server's does and gives that one connection object its own
 * `send`, `handler_AUTH` and `_nextHandler`, shadowing the prototype's. Any other SMTPServer in the process (a
 * test's upstream, a second relay) is stock smtp-server.
 *
 * The behaviours overridden, and why (each would make a fine option upstream):
 *
 * 1. Enhanced status codes (RFC 3463). smtp-server derives them from the basic code alone (554 → 5.6.0,
 *    538 → 5.7.0, 550 → 5.1.1), which is wrong for most policy replies (554 5.7.1, 538 5.7.11, 550 5.7.1). Every
 *    reply the relay gives therefore carries its own code at the start of its text (replyError, replyText), and
 *    such a text is sent as it is.
 * 2. smtp-server's own texts. Those docs/api.md#smtp-replies words differently are rewritten (REWRITES, and REWRITE_PATTERNS for
 *    texts that carry a number), so that one situation has one reply whichever of the two noticed it.
 * 3. AUTH in the EHLO reply before TLS. smtp-server lists it whatever the session's policy says; where
 *    `hidesAuthBeforeTls(session)` the line is left out (AUTH tried anyway still gets 538 5.7.11).
 * 4. Unknown commands before STARTTLS under `tls: required`. smtp-server says `500 command not recognized` to a
 *    command the session disabled (the relay disables VRFY, HELP and the like there); docs/api.md#smtp-replies wants `530 5.7.0
 *    Must issue a STARTTLS command first` for anything but EHLO, HELO, NOOP, QUIT, RSET and STARTTLS.
 * 5. The AUTH policy before the credentials. smtp-server prompts for credentials (334) and calls onAuth only once
 *    it has them; the relay's AUTH stage (`beforeAuth`) runs at the AUTH command itself, so a client that may not
 *    authenticate is told so before it sends a password.
 * 6. Strict base64 (RFC 4954 §4). smtp-server decodes AUTH responses leniently (`@@@@` is an empty user name, a
 *    password line `@@@@` an empty password that reaches onAuth as a guess, `<valid base64>!!!` the valid part).
 *    The initial response on the AUTH line and every continuation line (each SASL step smtp-server stores in
 *    `_nextHandler`) must be canonical base64 of UTF-8 first: else `501 5.5.2`, the exchange ends, no onAuth.
 *    `*` still cancels (501 5.7.0).
 * 7. Slow clients (docs/edge-relay.md). smtp-server has only an idle timeout, which every byte restarts; slow-clients.ts adds
 *    a deadline per command line, a DATA deadline with a minimum rate and a maximum session duration, fed here
 *    with every chunk as the parser is handed it and with the parser's DATA boundaries; past one, `421 4.4.2` and
 *    close.
 * 8. The wait before the greeting. smtp-server waits a fixed 100 ms after accepting a connection (a command
 *    sent in that window gets `421 You talk too soon`: early-talker detection), which caps every session's latency;
 *    `greetingDelayMs(session)` sets it per connection, 0 greeting at once (submission ports want no wait).
 *
 * smtp-server internals relied on (checked by the relay's end-to-end tests, which read the exact reply lines):
 * SMTPServer#connect/connections/server/_onError/_onClientConnect, SMTPConnection#send/handler_AUTH/_nextHandler,
 * SMTPConnection#init's body (_setListeners, the maxClients refusal, connectionReady) for 8,
 * and that only the SASL steps use `_nextHandler`; for 7, SMTPConnection#_parser/_createParser (a new parser after
 * STARTTLS)/_onClose/_handlerPending/_dataStream and SMTPStream#write/startDataMode/_endDataMode/_dataMode.
 */
import type { AddressInfo, Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from "smtp-server";
import { SMTPConnection } from "smtp-server/lib/smtp-connection.js";
import type { SMTPStream } from "smtp-server/lib/smtp-stream.js";
import { SMTP_REPLIES, type SmtpReply } from "../contract/smtp-replies.ts";
import { decodeInitialResponse, decodeSaslResponse } from "../mail-flow/sasl-response.ts";
import { SessionDeadlines, type DeadlineName, type SlowClientPolicy } from "./slow-clients.ts";

/** What the relay tells the adapter about each session (all read at the moment smtp-server needs them). */
export interface SessionAdjustments {
  /** Leave AUTH out of the EHLO reply until TLS is up (3). */
  hidesAuthBeforeTls(session: SMTPServerSession): boolean;
  /** The session's policy requires TLS: unknown commands before it get 530 (4). */
  requiresTls(session: SMTPServerSession): boolean;
  /** At the AUTH command (5): a reply refuses it, null lets smtp-server go on with the mechanism. */
  beforeAuth(session: SMTPServerSession, mechanism: string): SmtpReply | null;
  /**
   * A refusal that none of the relay's hooks gave (they log their own): the adapter's (`check` "base64",
   * "tls-required") or smtp-server's own ("smtp-server"), as sent.
   */
  refused(session: SMTPServerSession, check: string, reply: string): void;
  /** The slow-client limits and what to do when a session passes one (7). */
  slowClients: SlowClientPolicy;
  /** Milliseconds between accepting a connection and its greeting, read per connection (8). */
  greetingDelayMs(): number;
}

/** Commands a TLS-required session may not use before STARTTLS (MAIL, RCPT, DATA and AUTH are judged in hooks). */
export const COMMANDS_NEEDING_TLS = ["VRFY", "EXPN", "HELP", "ETRN", "WIZ", "SHELL", "KILL"] as const;

const OWN_CODE = /^[245]\.\d{1,3}\.\d{1,3} /;

/** The reply to a session past one of its deadlines (7). */
const DEADLINE_REPLIES: Readonly<Record<DeadlineName, SmtpReply>> = {
  command: SMTP_REPLIES.commandDeadline,
  data: SMTP_REPLIES.dataDeadline,
  session: SMTP_REPLIES.sessionDeadline,
};

/** smtp-server's own texts that docs/api.md#smtp-replies words differently, keyed by "code text". */
const REWRITES: ReadonlyMap<string, SmtpReply> = new Map<string, SmtpReply>([
  ["538 Error: Must issue a STARTTLS command first", SMTP_REPLIES.encryptionRequired],
  ["530 Error: authentication Required", SMTP_REPLIES.authRequired],
  ["235 Authentication successful", SMTP_REPLIES.authSucceeded],
  ["503 Error: No identity changes permitted", SMTP_REPLIES.alreadyAuthenticated],
  ["504 Error: Unrecognized authentication type", SMTP_REPLIES.unknownMechanism],
  // PLAIN that is base64 but not authzid NUL authcid NUL password (RFC 4616 §2), or a user name with controls.
  ["501 Error: invalid userdata", SMTP_REPLIES.badBase64],
  // LOGIN with an empty user name (an empty line is valid base64): a failed authentication, no guess counted.
  ["501 Error: missing username", SMTP_REPLIES.authInvalid],
  ["501 Error: syntax: AUTH PLAIN token", SMTP_REPLIES.syntaxError],
  ["501 Error: syntax: AUTH LOGIN", SMTP_REPLIES.syntaxError],
  ["501 Authentication aborted", SMTP_REPLIES.authCancelled],
  // On close(), after the grace period, and to any command once close() ran (the relay's own grace period
  // comes before it: see Relay.close).
  ["421 Server shutting down", SMTP_REPLIES.shuttingDown],
]);

/** Like REWRITES, for texts with a variable part. */
const REWRITE_PATTERNS: readonly (readonly [RegExp, SmtpReply])[] = [
  // MAIL FROM with SIZE= over smtp-server's `size` (the largest policy limit) is refused by smtp-server before
  // onMailFrom; over the session's own policy limit, by onMailFrom; over it in DATA, by the relay. One wording.
  [/^552 Error: message exceeds fixed maximum message size \d+$/, SMTP_REPLIES.messageTooBig],
];

type CommandHandler = (command: Buffer, callback: () => void) => void;

/**
 * smtp-server with override 1 only: a reply text that starts with an enhanced status code is sent as it is. What
 * any MTA that words its own replies wants (the relay's tests' upstream MTAs use it); the base of the relay's own.
 */
export class EnhancedCodeSmtpServer extends SMTPServer {
  /** smtp-server's connect(), with the connection adjusted before it reads a byte. */
  override connect(socket: Socket | TLSSocket, socketOptions?: ConstructorParameters<typeof SMTPConnection>[2]): void {
    const connection = new SMTPConnection(this, socket, socketOptions);
    this.adjustConnection(connection);
    this.connections.add(connection);
    connection.on("error", (error: Error) => this._onError(error));
    connection.on("connect", (data: Parameters<SMTPServer["_onClientConnect"]>[0]) => this._onClientConnect(data));
    connection.init();
  }

  protected adjustConnection(connection: SMTPConnection): void {
    const stockSend = SMTPConnection.prototype.send;
    connection.send = function sendWithOwnCode(code, data, context) {
      const ownCode = typeof data === "string" && OWN_CODE.test(data);
      stockSend.call(connection, code, data, ownCode ? false : context);
    };
  }
}

/** The relay's smtp-server: overrides 1 to 7 (see the top of this file). */
export class AdaptedSmtpServer extends EnhancedCodeSmtpServer {
  readonly #adjustments: SessionAdjustments;
  readonly #connections = new WeakMap<SMTPServerSession, SMTPConnection>();

  constructor(options: SMTPServerOptions, adjustments: SessionAdjustments) {
    super(options);
    this.#adjustments = adjustments;
  }

  protected override adjustConnection(connection: SMTPConnection): void {
    super.adjustConnection(connection);
    adjust(connection, this.#adjustments);
    enforceDeadlines(connection, this.#adjustments.slowClients);
    greetAfter(connection, this.#adjustments.greetingDelayMs());
    this.#connections.set(connection.session, connection);
  }

  /** Closes a session's connection (after its reply has been written). */
  closeSession(session: SMTPServerSession): void {
    const connection = this.#connections.get(session);
    if (connection) setImmediate(() => connection.close());
  }

  /** The port it listens on (after listen()). */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get openSessions(): number {
    return this.connections.size;
  }

  /** smtp-server reads these options at each use: new values count from the next connection (and idle wait). */
  applyLimits(limits: { maxClients: number; socketTimeoutMs: number }): void {
    this.options.maxClients = limits.maxClients;
    this.options.socketTimeout = limits.socketTimeoutMs;
  }

  /** Stops accepting connections without touching the open ones (smtp-server's close() answers them 421 at once). */
  stopListening(): void {
    this.server.close();
  }

  /** Runs before smtp-server (or TLS) sees the connection: for closing a socket before the greeting. */
  onRawConnection(listener: (socket: Socket) => void): void {
    this.server.prependListener("connection", listener);
  }
}

/** An Error that smtp-server turns into this reply (from a hook's callback). */
export function replyError(reply: SmtpReply, text: string = reply.text): Error & { responseCode: number } {
  return Object.assign(new Error(`${reply.enhanced} ${text}`), { responseCode: reply.code });
}

/** The text of a reply with its enhanced code (smtp-server sends 250 with onData's message). */
export function replyText(reply: SmtpReply, text: string = reply.text): string {
  return `${reply.enhanced} ${text}`;
}

/** Overrides 2 to 6, on a connection whose `send` already does 1. */
function adjust(connection: SMTPConnection, adjustments: SessionAdjustments): void {
  const sendWithOwnCode = connection.send.bind(connection);
  const stockAuth = SMTPConnection.prototype.handler_AUTH;
  const sendReply = (reply: SmtpReply) => sendWithOwnCode(reply.code, replyText(reply));
  /** Sends a refusal that no hook gave, and says so. */
  const refuse = (check: string, reply: SmtpReply) => {
    adjustments.refused(connection.session, check, `${reply.code} ${replyText(reply)}`);
    sendReply(reply);
  };

  connection.send = function adjustedSend(code, data, context) {
    if (typeof data === "string") {
      if (
        code === 500 &&
        data === "Error: command not recognized" &&
        !connection.secure &&
        adjustments.requiresTls(connection.session)
      )
        return refuse("tls-required", SMTP_REPLIES.startTlsFirst);
      const line = `${code} ${data}`;
      const rewrite = REWRITES.get(line) ?? REWRITE_PATTERNS.find(([pattern]) => pattern.test(line))?.[1];
      if (rewrite) return rewrite.code >= 400 ? refuse("smtp-server", rewrite) : sendReply(rewrite);
      // A hook's reply carries its own code (and the hook logged it); anything else >= 400 is smtp-server's.
      if (code >= 400 && !OWN_CODE.test(data)) adjustments.refused(connection.session, "smtp-server", line);
    } else if (
      Array.isArray(data) &&
      code === 250 &&
      !connection.secure &&
      adjustments.hidesAuthBeforeTls(connection.session)
    ) {
      return sendWithOwnCode(
        code,
        data.filter((line) => !String(line).startsWith("AUTH ")),
        context,
      );
    }
    return sendWithOwnCode(code, data, context);
  };

  connection.handler_AUTH = function adjustedAuth(command, callback) {
    const [, mechanism = "", initialResponse, ...extra] = command.toString().trim().split(/\s+/);
    const refusal = adjustments.beforeAuth(connection.session, mechanism.toUpperCase());
    if (refusal) {
      sendReply(refusal);
      return callback();
    }
    if (extra.length === 0 && initialResponse !== undefined && decodeInitialResponse(initialResponse) === null) {
      refuse("base64", SMTP_REPLIES.badBase64);
      return callback();
    }
    stockAuth.call(connection, command, callback);
  };

  // Every SASL step smtp-server queues for the next line is wrapped as it is queued: the line must decode.
  let nextHandler: CommandHandler | false = false;
  Object.defineProperty(connection, "_nextHandler", {
    configurable: true,
    enumerable: true,
    get: () => nextHandler,
    set(step: CommandHandler | false) {
      nextHandler = step && strictResponse(step);
    },
  });
  function strictResponse(step: CommandHandler): CommandHandler {
    return function strictSaslStep(line, callback) {
      const response = line.toString().trim();
      if (response !== "*" && decodeSaslResponse(response) === null) {
        refuse("base64", SMTP_REPLIES.badBase64);
        return callback();
      }
      step(line, callback);
    };
  }
}

/** Override 7: the session's deadlines, fed from the parser (the current one, and each one after STARTTLS). */
function enforceDeadlines(connection: SMTPConnection, policy: SlowClientPolicy): void {
  const limits = policy.limits();
  const deadlines = new SessionDeadlines(limits, {
    onExpired(deadline) {
      policy.expired(connection.session, deadline, limits);
      // A 421 makes smtp-server close the connection once it is written.
      const reply = DEADLINE_REPLIES[deadline];
      connection.send(reply.code, replyText(reply));
    },
    // As smtp-server's own idle timeout has it: a hook has not answered, or the message is in and onData has not.
    isWaitingForServer: () =>
      connection._handlerPending ||
      Boolean(connection._dataStream && connection._parser && !connection._parser._dataMode),
  });
  const watch = (parser: SMTPStream): SMTPStream => {
    const stockWrite = parser.write.bind(parser) as (chunk: Buffer) => boolean;
    parser.write = function timedWrite(chunk: Buffer) {
      deadlines.arrived(chunk);
      const reading = stockWrite(chunk);
      if (!reading) {
        // The pipe stops reading the socket until the parser drains: the client is held up by the relay.
        deadlines.pause();
        parser.once("drain", () => deadlines.resume());
      }
      return reading;
    } as SMTPStream["write"];
    const stockStartData = parser.startDataMode.bind(parser);
    parser.startDataMode = function timedStartDataMode(maxBytes) {
      const stream = stockStartData(maxBytes);
      deadlines.dataStarted();
      return stream;
    };
    const stockEndData = parser._endDataMode.bind(parser);
    parser._endDataMode = function timedEndDataMode(chunk, remainder, callback) {
      deadlines.dataEnded(remainder);
      stockEndData(chunk, remainder, callback);
    };
    return parser;
  };
  if (connection._parser) watch(connection._parser);
  const stockCreateParser = connection._createParser.bind(connection);
  connection._createParser = () => watch(stockCreateParser());
  const stockOnClose = connection._onClose.bind(connection);
  connection._onClose = function closeWithDeadlines() {
    deadlines.stop();
    stockOnClose();
  };
}

/** 8: smtp-server's init() with the wait before the greeting this connection's listener asks for. */
function greetAfter(connection: SMTPConnection, delayMs: number): void {
  connection.init = function initWithGreetingDelay() {
    connection._setListeners(() => {
      const server = connection._server;
      if (server.options.maxClients && server.connections.size > server.options.maxClients) {
        connection.send(421, `${connection.name} Too many connected clients, try again in a moment`, false);
        return;
      }
      if (delayMs === 0) {
        connection.connectionReady();
        return;
      }
      // Unref'd as smtp-server's: a connection waiting for its greeting does not keep the process alive.
      setTimeout(() => connection.connectionReady(), delayMs).unref();
    });
  };
}
