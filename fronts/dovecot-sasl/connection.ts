/**
 * One client connection of the Dovecot-SASL server: the handshake, then AUTH and CONT requests, many in flight,
 * answered by id as their decisions come. Malformed input (no handshake, a raw NUL, an over-long line, an unknown
 * command, a duplicate or unknown id) ends the connection with a log line; nothing a client sends can make an OK
 * without an `allow` verdict.
 *
 * A temporary failure (a `tempfail` verdict, or no verdict: the Decider rejected) resets the connection: Postfix
 * turns every FAIL, `temp` or not, into `535 5.7.8` (a client then drops its saved password), and only a lost
 * connection into `454 4.7.0` (xsasl_dovecot_server.c). A reset rather than a close: after a FIN, Postfix's next
 * request still writes into the dead connection and its next session gets a second 454; after a reset that write
 * fails and Postfix reconnects at once (seen with Postfix 3.7.11; fronts/dovecot-sasl/postfix.test.ts).
 */
import type { Socket } from "node:net";
import type { AuthRequest, Decider } from "../../contract/decider.ts";
import { SMTP_REPLIES } from "../../contract/smtp-replies.ts";
import type { Verdict } from "../../contract/verdict.ts";
import type { Logger } from "../../lib/json-lines.ts";
import { continueSasl, startSasl, type Credentials, type SaslState, type SaslStep } from "./mechanisms.ts";
import {
  contReply,
  failReply,
  handshake,
  okReply,
  parseAuth,
  parseRequestId,
  PROTOCOL_VERSION,
  splitLine,
  type AuthCommand,
} from "./protocol.ts";

export interface ConnectionOptions {
  decider: Decider;
  /** The smtpgate listener every request on this socket is decided for. */
  listener: string;
  log: Logger;
  maxLineBytes: number;
  maxRequestsInFlight: number;
  /** CUID: this connection's number, unique in the server. */
  connectionId: number;
  cookie: string;
}

/** A request between its AUTH and its answer: waiting for a CONT (with `sasl`), or for its decision. */
interface PendingRequest {
  command: AuthCommand;
  sasl: SaslState | undefined;
}

export interface ServedConnection {
  /** Requests waiting for a CONT or a decision. */
  readonly inFlight: number;
  /** Resets the connection now (a stop, a reload). */
  reset(reason: string): void;
}

const LF = 0x0a;

export function serveConnection(socket: Socket, options: ConnectionOptions): ServedConnection {
  const { log, connectionId } = options;
  const peer = socket.remoteAddress ?? "unix socket";
  const pending = new Map<number, PendingRequest>();
  let phase: "version" | "cpid" | "ready" = "version";
  let clientMinorVersion = 0;
  let buffered: Buffer[] = [];
  let bufferedBytes = 0;
  let closed = false;

  const end = (level: "info" | "warn", msg: string, fields: Record<string, unknown> = {}): void => {
    if (closed) return;
    closed = true;
    log({ level, msg, front: "dovecot-sasl", listener: options.listener, connection: connectionId, peer, ...fields });
    // A unix socket cannot be reset, and needs no reset: a write to a closed one fails at once (EPIPE).
    if (socket.remoteAddress === undefined) socket.destroy();
    else socket.resetAndDestroy();
  };
  const malformed = (problem: string): void =>
    end("warn", "dovecot-sasl connection closed: malformed input", { problem });
  const send = (line: string): void => {
    if (!closed) socket.write(line);
  };

  socket.on("error", () => {
    closed = true;
  });
  socket.on("close", () => {
    closed = true;
  });
  socket.on("data", function onDovecotSaslData(chunk: Buffer) {
    let start = 0;
    for (let lf = chunk.indexOf(LF); lf >= 0 && !closed; lf = chunk.indexOf(LF, start)) {
      const piece = chunk.subarray(start, lf);
      if (bufferedBytes + piece.length > options.maxLineBytes)
        return malformed(`a line over ${options.maxLineBytes} bytes`);
      const line = bufferedBytes === 0 ? piece : Buffer.concat([...buffered, piece]);
      buffered = [];
      bufferedBytes = 0;
      start = lf + 1;
      onLine(line.toString("utf8"));
    }
    if (closed || start >= chunk.length) return;
    const rest = chunk.subarray(start);
    if (bufferedBytes + rest.length > options.maxLineBytes)
      return malformed(`a line over ${options.maxLineBytes} bytes`);
    buffered.push(rest);
    bufferedBytes += rest.length;
  });
  socket.write(handshake({ pid: process.pid, connectionId, cookie: options.cookie }));

  function onLine(line: string): void {
    const parsed = splitLine(line);
    if (parsed === null) return malformed("not a command line (empty, lower case or a raw NUL)");
    const { command, args } = parsed;
    if (phase === "version") {
      if (command !== "VERSION") return malformed(`${command} before VERSION`);
      if (args[0] !== String(PROTOCOL_VERSION.major)) return malformed(`protocol version ${args[0] ?? "none"}`);
      clientMinorVersion = parseRequestId(args[1]) ?? 0;
      phase = "cpid";
      return;
    }
    if (phase === "cpid") {
      if (command !== "CPID" || parseRequestId(args[0]) === null) return malformed(`${command} before CPID`);
      phase = "ready";
      return;
    }
    if (command === "AUTH") return onAuth(args);
    if (command === "CONT") return onCont(args);
    return malformed(`unknown command ${command}`);
  }

  function onAuth(args: string[]): void {
    const command = parseAuth(args, clientMinorVersion);
    if ("malformed" in command) return malformed(command.malformed);
    if (pending.has(command.id)) return malformed(`AUTH with the id of a request in flight (${command.id})`);
    if (command.service === undefined) return malformed("AUTH without service=");
    if (pending.size >= options.maxRequestsInFlight)
      return malformed(`more than ${options.maxRequestsInFlight} requests in flight`);
    if (command.mechanism === null) return send(failReply(command.id, SMTP_REPLIES.unknownMechanism.text));
    const request: PendingRequest = { command, sasl: undefined };
    pending.set(command.id, request);
    proceed(request, startSasl(command.mechanism, command.initialResponse));
  }

  function onCont(args: string[]): void {
    const id = parseRequestId(args[0]);
    const request = id === null ? undefined : pending.get(id);
    if (request?.sasl === undefined) return malformed(`CONT for no request waiting for one (${args[0] ?? "no id"})`);
    const state = request.sasl;
    request.sasl = undefined;
    proceed(request, continueSasl(state, args[1] ?? ""));
  }

  function proceed(request: PendingRequest, step: SaslStep): void {
    const { id } = request.command;
    if (step.kind === "challenge") {
      request.sasl = step.state;
      return send(contReply(id, step.challenge));
    }
    if (step.kind === "refused") {
      pending.delete(id);
      return send(failReply(id, step.reason));
    }
    void decide(request, step.credentials);
  }

  async function decide(request: PendingRequest, credentials: Credentials): Promise<void> {
    const { id } = request.command;
    let verdict: Verdict;
    try {
      verdict = await options.decider.decideAuth(authRequest(request.command, credentials), {
        requestId: `dovecot-sasl-${connectionId}-${id}`,
      });
    } catch (error) {
      pending.delete(id);
      return end("warn", "dovecot-sasl connection reset: no decision (temporary failure)", {
        request: id,
        user: credentials.username,
        error: String(error),
      });
    }
    pending.delete(id);
    if (verdict.verdict === "allow" && verdict.identity !== null) return send(okReply(id, verdict.identity));
    if (verdict.verdict === "deny") {
      return send(failReply(id, verdict.smtp?.text ?? SMTP_REPLIES.authInvalid.text, credentials.username));
    }
    end("warn", "dovecot-sasl connection reset: temporary failure", {
      request: id,
      user: credentials.username,
      verdict: verdict.verdict,
      reason: verdict.reason,
      decisionId: verdict.decisionId,
    });
  }

  function authRequest(command: AuthCommand, credentials: Credentials): AuthRequest {
    return {
      listener: options.listener,
      session: `dovecot-sasl-${connectionId}`,
      // Without rip the request is malformed: the Decider refuses it, and that is a temporary failure.
      client: { ip: command.clientIp ?? "" },
      // The protocol says only that the session is protected, not how.
      tls: command.secured ? { version: "unknown", cipher: "unknown" } : null,
      mechanism: credentials.mechanism,
      username: credentials.username,
      password: credentials.password,
      authzid: credentials.authzid ?? null,
    };
  }

  return {
    get inFlight() {
      return pending.size;
    },
    reset: (reason) => end("info", "dovecot-sasl connection reset", { reason }),
  };
}
