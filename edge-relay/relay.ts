/**
 * The edge relay: smtp-server in front, the decision API behind, nodemailer towards the upstream MTA.
 *
 * Per session (docs/edge-relay.md): the sender group is chosen at connect time from the host access table and its
 * mail-flow policy governs the session; STARTTLS (or implicit TLS) sends the client's certificate to
 * /v1/decide/tls where the policy verifies certificates; AUTH goes to /v1/decide/auth; MAIL/RCPT/DATA enforce
 * TLS, authentication, relaying and limits; DATA is streamed to the upstream and the client hears 250 only
 * after the upstream accepted. Every answer the API cannot give in time is a 454, never an accept.
 *
 * Recipients the upstream refuses while it accepts others are reported to the sender in a delivery status
 * notification before the client hears 250 (dsn.ts). GET /metrics on the health port (metrics.ts). close()
 * stops accepting at once and gives open sessions limits.shutdownGraceMs to finish their transaction.
 */
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { PassThrough, Transform, type TransformCallback } from "node:stream";
import type { TLSSocket } from "node:tls";
import nodemailer from "nodemailer";
import {
  SMTPServer,
  type SMTPServerAddress,
  type SMTPServerAuthentication,
  type SMTPServerDataStream,
  type SMTPServerOptions,
  type SMTPServerSession,
} from "smtp-server";
import { SMTP_REPLIES } from "../contract/smtp-replies.ts";
import type { Verdict } from "../contract/verdict.ts";
import { ApiClient } from "../contract/api-client.ts";
import type { RelayConfig } from "./config.ts";
import { buildDeliveryReport, type RefusedRecipient } from "./dsn.ts";
import {
  COMMANDS_NEEDING_TLS,
  HIDE_AUTH_BEFORE_TLS,
  TLS_REQUIRED,
  installSmtpServerPatches,
  replyError,
  replyText,
} from "./smtp-server-patches.ts";
import { ListenerPolicyHolder, type SenderGroupMatch } from "./listener-policy.ts";
import { jsonLines, sessionLog, type Logger, type SessionLog } from "./log.ts";
import { createRelayMetrics, METRICS_CONTENT_TYPE, type RelayMetrics, type SessionResult } from "./metrics.ts";
import { peerChain } from "./peer-chain.ts";

export interface RelayOptions {
  config: RelayConfig;
  /** The API token (resolved from the environment by the caller). */
  apiToken: string;
  tls: { key: string; cert: string };
  /** PEM CA bundle for the upstream's certificate. */
  upstreamCa?: string | undefined;
  log?: Logger;
}

export interface Relay {
  ports: { starttls?: number; implicitTls?: number; health?: number };
  policy: ListenerPolicyHolder;
  metrics: RelayMetrics;
  /**
   * Stops the relay: no new connections from the first moment; sessions in a mail transaction may finish it
   * (a new transaction, AUTH or STARTTLS gets 421 4.3.2); after limits.shutdownGraceMs the sessions still open
   * get `421 4.3.2 Service shutting down, try again later` and are closed. Calling it again returns the same
   * promise.
   */
  close(): Promise<void>;
}

/** What the relay knows about one session beyond smtp-server's own session object. */
interface SessionState {
  icid: number;
  log: SessionLog;
  group: SenderGroupMatch;
  certificate: string[] | null;
  identity: string | null;
  method: string | null;
  authFailures: number;
  counted: boolean;
}

interface ConnectionHandle {
  session: SMTPServerSession;
  close(): void;
  send(code: number, data?: string): void;
}

/** What nodemailer's errors carry: the SMTP reply (if there was one) and an error code. */
type UpstreamError = Error & { responseCode?: number; response?: string; code?: string };

/** Most of a message's header section kept for a delivery status notification (the body never is). */
const MAX_HEADER_BYTES = 64 * 1024;

export async function startRelay(options: RelayOptions): Promise<Relay> {
  installSmtpServerPatches();
  const { config } = options;
  const log = options.log ?? jsonLines;
  const metrics = createRelayMetrics();
  const api = new ApiClient({
    url: config.api.url,
    token: options.apiToken,
    timeoutMs: config.api.timeoutMs,
    connections: config.api.connections,
  });
  const policy = new ListenerPolicyHolder(api, config.listener, log, {
    onRefreshFailure: (stage) => {
      metrics.policyRefreshFailures.inc();
      if (stage === "fetch") metrics.apiErrors.inc({ call: "policy" });
    },
  });
  try {
    await policy.load();
  } catch (error) {
    await api.close();
    throw new Error(
      `cannot load the policy of listener "${config.listener}" from ${config.api.url}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  policy.startRefreshing(config.api.policyRefreshSeconds);

  const upstream = nodemailer.createTransport({
    pool: true,
    host: config.upstream.host,
    port: config.upstream.port,
    secure: config.upstream.secure,
    requireTLS: config.upstream.requireTls,
    name: config.hostname,
    maxConnections: config.upstream.maxConnections,
    connectionTimeout: Math.min(config.upstream.timeoutMs, 10_000),
    greetingTimeout: Math.min(config.upstream.timeoutMs, 10_000),
    socketTimeout: config.upstream.timeoutMs,
    logger: false,
    tls: {
      minVersion: "TLSv1.2",
      rejectUnauthorized: config.upstream.tls.rejectUnauthorized,
      ...(options.upstreamCa ? { ca: options.upstreamCa } : {}),
      ...(config.upstream.tls.serverName ? { servername: config.upstream.tls.serverName } : {}),
    },
  });

  const states = new WeakMap<SMTPServerSession, SessionState>();
  const perClient = new Map<string, number>();
  let icidCounter = 0;
  const servers: SMTPServer[] = [];
  /** Set by close(): new transactions get 421 4.3.2 from then on. */
  let shuttingDown = false;
  /** Aborts of the upstream transactions whose DATA is still streaming in (close() ends them after the grace). */
  const streaming = new Set<() => void>();

  const connectionsOf = (server: SMTPServer): Set<ConnectionHandle> =>
    (server as unknown as { connections: Set<ConnectionHandle> }).connections;

  /** A decision API call, timed, its failures counted. */
  const decide = async <T>(call: "tls" | "auth", run: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await run();
    } catch (error) {
      metrics.apiErrors.inc({ call });
      throw error;
    } finally {
      metrics.decisionSeconds.observe({ call }, (performance.now() - started) / 1000);
    }
  };

  const countSession = (policyName: string, result: SessionResult) =>
    metrics.sessions.inc({ policy: policyName, result });

  /** Failures where the upstream could not be used at all (or said 421) are upstream errors; refusals are not. */
  const countUpstreamFailure = (failure: UpstreamError) => {
    if (!failure.responseCode || failure.responseCode === 421) metrics.upstreamErrors.inc();
  };

  const stateOf = (session: SMTPServerSession): SessionState => {
    const state = states.get(session);
    if (!state) throw replyError(SMTP_REPLIES.authTemporaryFailure, "Session state lost");
    return state;
  };

  const connectionOf = (session: SMTPServerSession): ConnectionHandle | undefined => {
    for (const server of servers) {
      for (const connection of connectionsOf(server)) {
        if (connection.session === session) return connection;
      }
    }
    return undefined;
  };

  const common = (state: SessionState, session: SMTPServerSession) => ({
    listener: config.listener,
    session: `${session.id}`,
    client: {
      ip: session.remoteAddress,
      ...(session.hostNameAppearsAs ? { helo: String(session.hostNameAppearsAs).slice(0, 255) } : {}),
    },
    tls:
      session.secure && session.tlsOptions
        ? {
            version: protocolOf(session),
            cipher: session.tlsOptions.name,
            ...(session.servername ? { sni: String(session.servername) } : {}),
          }
        : null,
    ...(state.certificate ? { certificate: { chain: state.certificate } } : {}),
  });

  const onConnect: SMTPServerOptions["onConnect"] = (session, callback) => {
    const group = policy.match(session.remoteAddress);
    const icid = ++icidCounter;
    const slog = sessionLog(log, icid, session.id, session.remoteAddress);
    if (shuttingDown) {
      // Accepted by the kernel just before close(), greeted after it.
      slog("info", `ICID ${icid} TEMPFAIL: shutting down`);
      countSession(group?.policyName ?? "none", "shutting-down");
      return callback(replyError(SMTP_REPLIES.shuttingDown));
    }
    if (!group) {
      slog("info", `ICID ${icid} REJECT: ${session.remoteAddress} matches no sender group`);
      countSession("none", "rejected");
      return callback(replyError(SMTP_REPLIES.accessDenied));
    }
    slog(
      "info",
      `New SMTP ICID ${icid} interface ${session.localAddress}:${session.localPort} address ${session.remoteAddress} range ${group.group} policy ${group.policyName}`,
    );
    if (group.policy.behaviour === "reject" || group.policy.behaviour === "tcprefuse") {
      slog("info", `ICID ${icid} REJECT SG ${group.group} match ${session.remoteAddress}`);
      countSession(group.policyName, "rejected");
      return callback(replyError(SMTP_REPLIES.accessDenied));
    }
    const count = (perClient.get(session.remoteAddress) ?? 0) + 1;
    if (count > group.policy.maxConnectionsPerClient) {
      slog(
        "warn",
        `ICID ${icid} TEMPFAIL: more than ${group.policy.maxConnectionsPerClient} connections from ${session.remoteAddress}`,
      );
      countSession(group.policyName, "too-many-connections");
      return callback(replyError(SMTP_REPLIES.tooManyConnections));
    }
    perClient.set(session.remoteAddress, count);
    // AUTH is listed in EHLO only where this session could use it (after TLS when so configured, RFC 3207 §4.2).
    const rules = group.policy;
    const marks = session as unknown as Record<symbol, unknown>;
    const disabled: string[] = [];
    if (rules.smtpAuth === "off") disabled.push("AUTH");
    else if (rules.requireTlsToOfferAuth || rules.tls === "required") marks[HIDE_AUTH_BEFORE_TLS] = true;
    if (rules.tls === "required") {
      disabled.push(...COMMANDS_NEEDING_TLS);
      marks[TLS_REQUIRED] = true;
    }
    if (disabled.length > 0) session.disabledCommands = disabled;
    states.set(session, {
      icid,
      log: slog,
      group,
      certificate: null,
      identity: null,
      method: null,
      authFailures: 0,
      counted: true,
    });
    countSession(group.policyName, "accepted");
    metrics.sessionsActive.inc();
    callback();
  };

  const onClose: SMTPServerOptions["onClose"] = (session) => {
    const state = states.get(session);
    if (!state?.counted) return;
    state.counted = false;
    metrics.sessionsActive.dec();
    const left = (perClient.get(session.remoteAddress) ?? 1) - 1;
    if (left <= 0) perClient.delete(session.remoteAddress);
    else perClient.set(session.remoteAddress, left);
    state.log("info", `ICID ${state.icid} close`);
  };

  const onSecure: SMTPServerOptions["onSecure"] = (socket, session, callback) => {
    void (async () => {
      const state = stateOf(session);
      const tlsSocket = socket as TLSSocket;
      const protocol = tlsSocket.getProtocol?.() ?? "unknown";
      metrics.tls.inc({ result: "success", protocol });
      state.log(
        "info",
        `ICID ${state.icid} TLS success protocol ${protocol} cipher ${tlsSocket.getCipher?.()?.name ?? "unknown"}`,
      );
      // RFC 3207: nothing from before the handshake counts any more, identity included.
      state.identity = null;
      state.method = null;
      state.certificate = null;
      if (shuttingDown) return callback(replyError(SMTP_REPLIES.shuttingDown));
      if (!state.group.policy.verifyClientCertificate) return callback();
      state.certificate = peerChain(tlsSocket);
      const certificate = state.certificate;
      let verdict: Verdict;
      try {
        verdict = await decide("tls", () =>
          api.decideTls(
            {
              ...common(state, session),
              tls: { version: protocol, cipher: tlsSocket.getCipher?.()?.name ?? "unknown" },
              certificate: certificate ? { chain: certificate } : null,
            },
            { requestId: `${session.id}-tls` },
          ),
        );
      } catch (error) {
        metrics.auth.inc({ method: "certificate", result: "tempfail" });
        state.log("error", `ICID ${state.icid} Cert Auth: API unavailable: ${(error as Error).message}`);
        return callback(replyError(SMTP_REPLIES.authTemporaryFailure));
      }
      if (verdict.verdict === "allow" && verdict.identity) {
        metrics.auth.inc({ method: "certificate", result: "success" });
        state.identity = verdict.identity;
        state.method = "certificate";
        session.user = verdict.identity;
        state.log(
          "info",
          `ICID ${state.icid} Cert Auth: succeeded for user: ${verdict.identity} with profile: ${verdict.profile}`,
          { decisionId: verdict.decisionId },
        );
        return callback();
      }
      // "continue" without a certificate is no attempt at all (flow C offers AUTH); with one, it did not pass.
      if (verdict.verdict === "tempfail") metrics.auth.inc({ method: "certificate", result: "tempfail" });
      else if (verdict.verdict === "deny" || certificate)
        metrics.auth.inc({ method: "certificate", result: "failure" });
      state.log(
        "info",
        `ICID ${state.icid} Cert Auth: ${verdict.verdict === "continue" ? "no decision" : "failed"} reason ${verdict.reason}`,
        { decisionId: verdict.decisionId, verdict: verdict.verdict },
      );
      if (verdict.close || verdict.verdict === "deny")
        return callback(replyError(verdict.smtp ?? SMTP_REPLIES.certificateRequired));
      callback();
    })().catch((error: unknown) => callback(error as Error));
  };

  const onAuth: SMTPServerOptions["onAuth"] = (auth: SMTPServerAuthentication, session, callback) => {
    void (async () => {
      const state = stateOf(session);
      const rules = state.group.policy;
      if (shuttingDown) return callback(replyError(SMTP_REPLIES.shuttingDown));
      if (state.identity) return callback(replyError(SMTP_REPLIES.alreadyAuthenticated));
      if (rules.smtpAuth === "off") return callback(replyError(SMTP_REPLIES.authNotAvailable));
      if (!session.secure && rules.tls === "required") return callback(replyError(SMTP_REPLIES.startTlsFirst));
      if (!session.secure && rules.requireTlsToOfferAuth) return callback(replyError(SMTP_REPLIES.encryptionRequired));
      const mechanism = auth.method;
      if (mechanism !== "PLAIN" && mechanism !== "LOGIN") return callback(replyError(SMTP_REPLIES.unknownMechanism));
      let verdict: Verdict;
      try {
        verdict = await decide("auth", () =>
          api.decideAuth(
            {
              ...common(state, session),
              mechanism,
              username: auth.username ?? "",
              password: auth.password ?? "",
              ...(auth.authzid ? { authzid: auth.authzid } : {}),
              certificate: state.certificate ? { chain: state.certificate } : null,
            },
            { requestId: `${session.id}-auth-${state.authFailures}` },
          ),
        );
      } catch (error) {
        metrics.auth.inc({ method: "password", result: "tempfail" });
        state.log("error", `SMTP Auth: (ICID ${state.icid}) API unavailable: ${(error as Error).message}`);
        return callback(replyError(SMTP_REPLIES.authTemporaryFailure));
      }
      const user = printable(auth.username ?? "", 128);
      if (verdict.verdict === "allow" && verdict.identity) {
        metrics.auth.inc({ method: "password", result: "success" });
        if (verdict.temporary) state.log.markTemporary();
        state.identity = verdict.identity;
        state.method = verdict.method;
        state.log(
          "info",
          `SMTP Auth: (ICID ${state.icid}) succeeded for user: ${user} using AUTH mechanism: ${auth.method} with profile: ${verdict.profile}`,
          {
            decisionId: verdict.decisionId,
            ...(verdict.temporary ? { note: "allowance query failed; allowed temporarily by the listener" } : {}),
          },
        );
        return callback(null, { user: verdict.identity });
      }
      if (verdict.verdict === "tempfail") {
        metrics.auth.inc({ method: "password", result: "tempfail" });
        state.log(
          "warn",
          `SMTP Auth: (ICID ${state.icid}) temporary failure for user: ${user} reason ${verdict.reason}`,
          { decisionId: verdict.decisionId },
        );
        return callback(replyError(verdict.smtp ?? SMTP_REPLIES.authTemporaryFailure));
      }
      state.authFailures += 1;
      metrics.auth.inc({ method: "password", result: "failure" });
      state.log(
        "info",
        `SMTP Auth: (ICID ${state.icid}) failed for user: ${user} using AUTH mechanism: ${auth.method} reason ${verdict.reason}`,
        { decisionId: verdict.decisionId },
      );
      // A delay makes guessing slow; the reply never says which of user name or password was wrong.
      await delay(config.limits.authFailureDelayMs);
      if (verdict.close || state.authFailures >= config.limits.maxAuthFailures) {
        const connection = connectionOf(session);
        callback(
          replyError(verdict.close ? (verdict.smtp ?? SMTP_REPLIES.authInvalid) : SMTP_REPLIES.tooManyAuthFailures),
        );
        setImmediate(() => connection?.close());
        return;
      }
      callback(replyError(verdict.smtp ?? SMTP_REPLIES.authInvalid));
    })().catch((error: unknown) => callback(error as Error));
  };

  const onMailFrom: SMTPServerOptions["onMailFrom"] = (address, session, callback) => {
    const state = stateOf(session);
    const rules = state.group.policy;
    // Shutting down: the transaction in progress may finish, no new one starts (421 closes the connection).
    if (shuttingDown) return callback(replyError(SMTP_REPLIES.shuttingDown));
    if (!session.secure && rules.tls === "required") return callback(replyError(SMTP_REPLIES.startTlsFirst));
    if (!state.identity && rules.smtpAuth === "required") return callback(replyError(SMTP_REPLIES.authRequired));
    const declared = Number(
      address.args && typeof address.args === "object" ? (address.args as Record<string, string>).SIZE : 0,
    );
    if (Number.isFinite(declared) && declared > rules.maxMessageBytes)
      return callback(replyError(SMTP_REPLIES.messageTooBig));
    state.log("info", `ICID ${state.icid} MID from: <${printable(address.address, 320)}>`);
    callback();
  };

  const onRcptTo: SMTPServerOptions["onRcptTo"] = (address, session, callback) => {
    const state = stateOf(session);
    const rules = state.group.policy;
    if (session.envelope.rcptTo.length >= rules.maxRecipients)
      return callback(replyError(SMTP_REPLIES.tooManyRecipients));
    const relayAllowed = state.identity !== null || rules.behaviour === "relay";
    if (!relayAllowed && !isLocalRecipient(address, policy)) {
      state.log("info", `ICID ${state.icid} RCPT rejected (relay denied): <${printable(address.address, 320)}>`);
      return callback(replyError(SMTP_REPLIES.relayDeniedRecipient));
    }
    callback();
  };

  const onData: SMTPServerOptions["onData"] = (stream, session, callback) => {
    const state = stateOf(session);
    relayMessage(stream, session, state).then(
      (reply) => (typeof reply === "string" ? callback(null, reply) : callback(reply)),
      (error: unknown) => callback(error as Error),
    );
  };

  const relayMessage = async (
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    state: SessionState,
  ): Promise<string | Error> => {
    const arrived = new Date();
    const limit = state.group.policy.maxMessageBytes;
    const counter = new ByteLimit(limit);
    const body = new PassThrough();
    // 'end': the client's DATA is complete. 'close' without 'end': the client went away in the middle (smtp-server
    // destroys the stream then), or close() ended the session after the grace period. Either way the upstream
    // transaction is aborted before its final dot, so the upstream never delivers a message cut short.
    let complete = false;
    let aborted: string | null = null;
    const abort = (reason: string) => {
      if (complete || aborted !== null) return;
      aborted = reason;
      body.destroy(new Error(reason));
    };
    const ended = new Promise<void>((resolve) => {
      stream.once("end", () => {
        complete = true;
        resolve();
      });
      stream.once("close", () => {
        abort("the client connection closed before the end of DATA");
        resolve();
      });
    });
    // With a listener, smtp-server destroys the stream with an error instead of silently: no crash either way.
    stream.once("error", () => abort("the client connection closed before the end of DATA"));
    const abortOnShutdown = () => abort("the relay is shutting down");
    streaming.add(abortOnShutdown);
    void ended.then(() => streaming.delete(abortOnShutdown));

    const received = receivedHeader(session, state, config.hostname);
    body.write(received);
    // Past the limit: abort the upstream transaction at once (an unhandled stream error would kill the process)
    // and keep reading the client's DATA.
    counter.on("error", (error) => {
      stream.unpipe(counter);
      stream.resume();
      body.destroy(error);
    });
    stream.pipe(counter).pipe(body);
    const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : "";
    const to = session.envelope.rcptTo.map((recipient) => recipient.address);
    try {
      const info = (await upstream.sendMail({ envelope: { from, to }, raw: body })) as {
        response?: string;
        rejected?: string[];
        rejectedErrors?: UpstreamRefusal[];
      };
      await ended;
      if (stream.sizeExceeded || counter.exceeded) {
        metrics.messages.inc({ result: "too-big" });
        return replyError(SMTP_REPLIES.messageTooBig);
      }
      const response = printable(info.response ?? "", 200);
      const refused = refusedRecipients(info);
      if (refused.length === 0) {
        metrics.messages.inc({ result: "relayed" });
        metrics.messageBytes.inc(undefined, counter.bytes);
        state.log(
          "info",
          `ICID ${state.icid} Message relayed to ${config.upstream.host}:${config.upstream.port}: ${response}`,
          { recipients: to.length, bytes: counter.bytes },
        );
        return replyText(
          { code: 250, enhanced: "2.0.0", text: "" },
          `Ok: relayed (${printable(info.response ?? "", 120)})`,
        );
      }
      return await reportRefused({
        state,
        session,
        from,
        to,
        refused,
        response,
        bytes: counter.bytes,
        headers: received + counter.headers,
        arrived,
      });
    } catch (error) {
      // Whatever happened upstream, read the rest of the client's DATA so the session stays in step.
      stream.unpipe(counter);
      stream.resume();
      await ended;
      if (stream.sizeExceeded || counter.exceeded) {
        metrics.messages.inc({ result: "too-big" });
        state.log("info", `ICID ${state.icid} Message too big (over ${limit} bytes): not relayed`);
        return replyError(SMTP_REPLIES.messageTooBig);
      }
      if (aborted !== null) {
        // The client is gone (or about to be told 421): it retries a message it never saw accepted.
        state.log("info", `ICID ${state.icid} Upstream transaction aborted (${aborted}): not relayed`);
        return replyError(SMTP_REPLIES.upstreamFailed);
      }
      const failure = error as UpstreamError;
      countUpstreamFailure(failure);
      state.log(
        "warn",
        `ICID ${state.icid} Upstream delivery failed: ${printable(failure.response ?? failure.message, 300)}`,
        { code: failure.code, responseCode: failure.responseCode },
      );
      if (failure.responseCode && failure.responseCode >= 500 && failure.responseCode < 600) {
        // Every recipient refused (or the message itself): the client gets the upstream's own reply.
        metrics.messages.inc({ result: "refused" });
        const enhanced = /\b5\.\d{1,3}\.\d{1,3}\b/.exec(failure.response ?? "")?.[0] ?? "5.0.0";
        return replyError(
          { code: failure.responseCode, enhanced, text: "" },
          `Upstream refused the message: ${printable(stripReplyCode(failure.response ?? ""), 200)}`,
        );
      }
      metrics.messages.inc({ result: "tempfail" });
      if (failure.responseCode) {
        // docs/edge-relay.md: a 4xx with the upstream's reason.
        const reason = printable(stripReplyCode(failure.response ?? ""), 200);
        return replyError(
          SMTP_REPLIES.upstreamFailed,
          reason ? `${SMTP_REPLIES.upstreamFailed.text}: ${reason}` : SMTP_REPLIES.upstreamFailed.text,
        );
      }
      return replyError(SMTP_REPLIES.upstreamUnavailable);
    }
  };

  /**
   * The upstream took the message for some recipients and refused the others at RCPT. docs/edge-relay.md: the relay
   * stores nothing and loses nothing, so before the client hears 250 the sender gets a delivery status
   * notification (RFC 3464) naming each refused recipient and the upstream's reply, from the null sender
   * through the same upstream. A 4xx refusal is reported as well: the relay has no queue to retry from.
   *
   * If the notification cannot be sent:
   * - temporarily (upstream down, 4xx, timeout): 451 to the client, which keeps the message and retries. The
   *   recipients that already have it get it again on that retry: a duplicate is the price of losing nothing
   *   (RFC 5321 §6.1 prefers duplicates to loss), and a retry with the upstream working again ends it.
   * - permanently (the upstream refuses the notification, i.e. the sender's own address): 554 to the client,
   *   naming what was delivered and what was not. A retry could not make the sender reachable through this
   *   upstream, it would only repeat the duplicates until the client's queue lifetime; a 5xx now makes the
   *   client's MTA tell the sender by its own route (or shows the MUA user the reply).
   * The null sender `<>` is never notified (a bounce about a bounce can loop, RFC 3464 §2.3.3 / RFC 5321 §4.5.5):
   * 250, logged at error level.
   */
  const reportRefused = async (message: {
    state: SessionState;
    session: SMTPServerSession;
    from: string;
    to: string[];
    refused: RefusedRecipient[];
    response: string;
    bytes: number;
    headers: string;
    arrived: Date;
  }): Promise<string | Error> => {
    const { state, from, to, refused } = message;
    const delivered = to.length - refused.length;
    const list = refused
      .map((item) => `<${printable(item.recipient, 320)}> ${printable(item.response, 200)}`)
      .join("; ");
    const fields = {
      refused: refused.map((item) => ({
        recipient: printable(item.recipient, 320),
        response: printable(item.response, 300),
      })),
      recipients: to.length,
      bytes: message.bytes,
    };
    const relayedPart = `relayed to ${delivered} of ${to.length} recipients (${printable(message.response, 100)})`;
    if (!from) {
      metrics.dsn.inc({ result: "suppressed" });
      metrics.messages.inc({ result: "relayed" });
      metrics.messageBytes.inc(undefined, message.bytes);
      state.log(
        "error",
        `ICID ${state.icid} Message from the null sender <> relayed to ${delivered} of ${to.length} recipients; the upstream refused the others and NO delivery status notification is sent (a bounce of a bounce could loop): ${list}`,
        fields,
      );
      return replyText(
        { code: 250, enhanced: "2.0.0", text: "" },
        `Ok: ${relayedPart}; ${refused.length} refused by the upstream, not reported (null sender)`,
      );
    }
    const report = buildDeliveryReport({
      hostname: config.hostname,
      upstream: config.upstream.host,
      sender: from,
      refused,
      recipientCount: to.length,
      headers: message.headers,
      arrived: message.arrived,
      sessionId: `${message.session.id}`,
    });
    try {
      const sent = (await upstream.sendMail({ envelope: { from: "", to: [from] }, raw: report })) as {
        response?: string;
      };
      metrics.dsn.inc({ result: "sent" });
      metrics.messages.inc({ result: "relayed" });
      metrics.messageBytes.inc(undefined, message.bytes);
      state.log(
        "warn",
        `ICID ${state.icid} Message relayed to ${delivered} of ${to.length} recipients; the upstream refused ${refused.length}: ${list}; delivery status notification sent to <${printable(from, 320)}>: ${printable(sent.response ?? "", 200)}`,
        fields,
      );
      return replyText(
        { code: 250, enhanced: "2.0.0", text: "" },
        `Ok: ${relayedPart}; ${refused.length} refused by the upstream, reported to the sender`,
      );
    } catch (error) {
      const failure = error as UpstreamError;
      countUpstreamFailure(failure);
      const reason = printable(failure.response ?? failure.message, 200);
      if (failure.responseCode && failure.responseCode >= 500) {
        metrics.dsn.inc({ result: "refused" });
        metrics.messages.inc({ result: "refused" });
        state.log(
          "error",
          `ICID ${state.icid} Message relayed to ${delivered} of ${to.length} recipients; the upstream refused ${list}; and it refused the delivery status notification to <${printable(from, 320)}>: ${reason}`,
          fields,
        );
        return replyError(
          { code: 554, enhanced: "5.0.0", text: "" },
          printable(
            `Delivered to ${delivered} of ${to.length} recipients only; the upstream refused ${list}; the notice to the sender was refused: ${stripReplyCode(failure.response ?? failure.message)}`,
            400,
          ),
        );
      }
      metrics.dsn.inc({ result: "failed" });
      metrics.messages.inc({ result: "tempfail" });
      state.log(
        "error",
        `ICID ${state.icid} Upstream refused ${list}; the delivery status notification to <${printable(from, 320)}> failed: ${reason}; answering 451 so that the client retries (the ${delivered} accepted recipients will get the message again)`,
        fields,
      );
      return replyError(
        SMTP_REPLIES.upstreamFailed,
        `${SMTP_REPLIES.upstreamFailed.text}: ${refused.length} of ${to.length} recipients refused and the sender could not be notified`,
      );
    }
  };

  const policies = Object.values(policy.policy.mailFlowPolicies);
  const serverOptions = (secure: boolean): SMTPServerOptions => ({
    secure,
    name: config.hostname,
    banner: "smtpgate",
    key: options.tls.key,
    cert: options.tls.cert,
    minVersion: config.tls.minVersion,
    requestCert: policies.some((rules) => rules.verifyClientCertificate),
    rejectUnauthorized: false,
    hideENHANCEDSTATUSCODES: false,
    hideSTARTTLS: policies.every((rules) => rules.tls === "off"),
    authMethods: ["PLAIN", "LOGIN"],
    authOptional: true,
    allowInsecureAuth: policies.some((rules) => !rules.requireTlsToOfferAuth),
    disabledCommands: policies.every((rules) => rules.smtpAuth === "off") ? ["AUTH"] : [],
    size: policy.largestMessageBytes,
    maxClients: config.limits.maxClients,
    socketTimeout: config.limits.socketTimeoutMs,
    // The grace period is the relay's own (close() below); once it is over, smtp-server's close() ends the rest.
    closeTimeout: 1,
    disableReverseLookup: true,
    logger: false,
    onConnect,
    onSecure,
    onAuth,
    onMailFrom,
    onRcptTo,
    onData,
    onClose,
  });

  const ports: Relay["ports"] = {};
  const listen = async (server: SMTPServer, address: { host: string; port: number }): Promise<number> => {
    // tcprefuse: close before smtp-server even greets (AsyncOS's TCPREFUSE), decided on the raw socket.
    const netServer = (
      server as unknown as {
        server: { prependListener(event: "connection", listener: (socket: Socket) => void): void };
      }
    ).server;
    netServer.prependListener("connection", (socket: Socket) => {
      const match = policy.match(normaliseAddress(socket.remoteAddress ?? ""));
      if (match?.policy.behaviour === "tcprefuse") {
        countSession(match.policyName, "tcprefuse");
        socket.destroy();
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(address.port, address.host, () => resolve());
    });
    server.on(
      "error",
      (error: Error & { meta?: { stage?: string; remoteAddress?: string }; remoteAddress?: string }) => {
        // smtp-server marks failed handshakes (STARTTLS and implicit TLS) with meta.stage "connect". No version was
        // agreed on (what the socket reports then is only the highest it would have offered): protocol "unknown".
        if (error.meta?.stage === "connect") {
          metrics.tls.inc({ result: "failure", protocol: "unknown" });
          log({
            level: "warn",
            msg: `TLS failed: ${printable(error.message.trim(), 300)}`,
            client: error.meta.remoteAddress ?? error.remoteAddress,
          });
          return;
        }
        log({ level: "error", msg: "SMTP server error", error: error.message });
      },
    );
    return (server as unknown as { server: { address(): AddressInfo } }).server.address().port;
  };

  if (config.listen.starttls) {
    const server = new SMTPServer(serverOptions(false));
    servers.push(server);
    ports.starttls = await listen(server, config.listen.starttls);
  }
  if (config.listen.implicitTls) {
    const server = new SMTPServer(serverOptions(true));
    servers.push(server);
    ports.implicitTls = await listen(server, config.listen.implicitTls);
  }

  let health: HttpServer | undefined;
  if (config.listen.health) {
    health = createHttpServer((request, response) => {
      const path = (request.url ?? "").split("?")[0];
      if (request.method === "GET" && path === "/healthz") {
        // 503 while stopping: a load balancer stops sending new clients during the grace period.
        response.writeHead(shuttingDown ? 503 : 200, { "content-type": "application/json" });
        response.end(
          JSON.stringify({
            status: shuttingDown ? "stopping" : "ok",
            listener: config.listener,
            policyRefreshError: policy.lastError,
          }),
        );
        return;
      }
      if (request.method === "GET" && path === "/metrics") {
        response.writeHead(200, { "content-type": METRICS_CONTENT_TYPE });
        response.end(metrics.registry.render());
        return;
      }
      response.writeHead(404).end();
    });
    const address = config.listen.health;
    await new Promise<void>((resolve) => health?.listen(address.port, address.host, resolve));
    ports.health = (health.address() as AddressInfo).port;
  }

  log({
    level: "info",
    msg: "relay listening",
    listener: config.listener,
    ports,
    upstream: `${config.upstream.host}:${config.upstream.port}`,
  });

  const openSessions = (): number => servers.reduce((count, server) => count + connectionsOf(server).size, 0);

  const shutdown = async (): Promise<void> => {
    shuttingDown = true;
    policy.stopRefreshing();
    const graceMs = config.limits.shutdownGraceMs;
    log({
      level: "info",
      msg: "relay stopping: no new connections; open sessions may finish their mail transaction",
      listener: config.listener,
      openSessions: openSessions(),
      graceMs,
    });
    // Stop accepting at once: the listening sockets close and the kernel refuses new connections. (smtp-server's
    // own close() would do that too, but it also answers every command from then on with 421 at once: no
    // session could finish.)
    for (const server of servers) (server as unknown as { server: { close(): void } }).server.close();
    const deadline = Date.now() + graceMs;
    while (openSessions() > 0 && Date.now() < deadline) await delay(Math.min(25, deadline - Date.now()));
    const left = openSessions();
    if (left > 0)
      log({
        level: "warn",
        msg: "relay stopping: grace period over, closing the sessions left with 421 4.3.2",
        listener: config.listener,
        openSessions: left,
        messagesStreaming: streaming.size,
      });
    // A message still streaming in is not relayed: the client is told 421 and sends it again elsewhere or later.
    for (const abort of streaming) abort();
    // smtp-server's close(): handshakes in progress are dropped, and every session left gets "421 Server
    // shutting down" (rewritten to 421 4.3.2 Service shutting down, try again later) and is closed.
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    await new Promise<void>((resolve) => (health ? health.close(() => resolve()) : resolve()));
    upstream.close();
    await api.close();
    log({ level: "info", msg: "relay stopped", listener: config.listener });
  };

  let stopped: Promise<void> | undefined;
  return {
    ports,
    policy,
    metrics,
    close: () => (stopped ??= shutdown()),
  };
}

/**
 * Counts the bytes of DATA and stops passing them on past the policy's limit (the upstream never gets it all).
 * Keeps the message's header section (up to MAX_HEADER_BYTES) for a delivery status notification.
 */
class ByteLimit extends Transform {
  bytes = 0;
  exceeded = false;
  readonly #limit: number;
  #head: Buffer[] = [];
  #headDone = false;

  constructor(limit: number) {
    super();
    this.#limit = limit;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.#limit) {
      this.exceeded = true;
      done(new Error("message size limit exceeded"));
      return;
    }
    if (!this.#headDone) {
      this.#head.push(chunk);
      this.#settleHead();
    }
    done(null, chunk);
  }

  /** The header section as read so far: complete lines up to the blank line, CRLF line ends, UTF-8 decoded. */
  get headers(): string {
    const text = Buffer.concat(this.#head).toString("latin1");
    const blank = /(?:^|\n)\r?\n/.exec(text);
    const section = blank
      ? text.slice(0, blank.index + (blank[0].startsWith("\n") ? 1 : 0))
      : text.slice(0, text.lastIndexOf("\n") + 1);
    return Buffer.from(section, "latin1")
      .toString("utf8")
      .replace(/\r\n|\r|\n/g, "\r\n");
  }

  /** Joins what was kept and stops keeping more once the blank line or MAX_HEADER_BYTES is reached. */
  #settleHead(): void {
    if (this.#headDone) return;
    let joined = Buffer.concat(this.#head);
    const blank = /(?:^|\n)\r?\n/.exec(joined.toString("latin1"));
    if (blank) {
      this.#headDone = true;
      joined = joined.subarray(0, blank.index + blank[0].length);
    } else if (joined.length >= MAX_HEADER_BYTES) {
      this.#headDone = true;
      joined = joined.subarray(0, MAX_HEADER_BYTES);
    }
    this.#head = [joined];
  }
}

/** Nodemailer's record of one recipient the upstream refused at RCPT. */
interface UpstreamRefusal {
  recipient?: string;
  response?: string;
}

/** The recipients the upstream refused while it took the message for others, each with its reply. */
function refusedRecipients(info: { rejected?: string[]; rejectedErrors?: UpstreamRefusal[] }): RefusedRecipient[] {
  const errors = info.rejectedErrors ?? [];
  return (info.rejected ?? []).map((recipient) => ({
    recipient,
    response:
      errors.find((error) => error.recipient === recipient)?.response ??
      "550 5.0.0 Recipient refused (the upstream gave no reason)",
  }));
}

/**
 * A recipient an unauthenticated sender may use under an `accept` policy: a plain local part at one of the
 * accepted domains. Local parts that other MTAs might route onwards (`user%other@ours`, `other!user@ours`,
 * quoted local parts, source routes `@ours:user@other`) are refused outright: they are the classic open-relay
 * tricks.
 */
function isLocalRecipient(address: SMTPServerAddress, policy: ListenerPolicyHolder): boolean {
  const value = address.address;
  const at = value.lastIndexOf("@");
  if (at <= 0) return false;
  const local = value.slice(0, at);
  const domain = value.slice(at + 1);
  if (/[%!@:"\\]/.test(local) || local.startsWith("@")) return false;
  return policy.isAcceptedDomain(domain);
}

/** RFC 5321 §4.4 trace field, with the RFC 3848 protocol type; nothing secret, only the identity. */
function receivedHeader(session: SMTPServerSession, state: SessionState, hostname: string): string {
  const protocol = `ESMTP${session.secure ? "S" : ""}${state.identity ? "A" : ""}`;
  const helo = printable(String(session.hostNameAppearsAs || "unknown"), 100).replace(/[()]/g, "");
  const tls =
    session.secure && session.tlsOptions
      ? ` (${printable(protocolOf(session), 20)} ${printable(session.tlsOptions.name, 60)})`
      : "";
  const auth = state.identity
    ? `\r\n\t(authenticated as ${printable(state.identity, 100).replace(/[()]/g, "")} by ${state.method ?? "smtpgate"})`
    : "";
  const recipient =
    session.envelope.rcptTo.length === 1
      ? `\r\n\tfor <${printable(session.envelope.rcptTo[0]?.address ?? "", 320)}>`
      : "";
  return `Received: from ${helo} ([${session.remoteAddress}])\r\n\tby ${hostname} (smtpgate) with ${protocol} id ${session.id}${tls}${auth}${recipient};\r\n\t${new Date().toUTCString().replace("GMT", "+0000")}\r\n`;
}

function protocolOf(session: SMTPServerSession): string {
  const options = session.tlsOptions as { version?: string; standardName?: string } | false;
  return (options && options.version) || "TLS";
}

/** Printable ASCII only (log lines and headers must not carry control characters from the client). */
function printable(value: string, max: number): string {
  // eslint-disable-next-line no-control-regex -- stripping control characters is the point
  const clean = value.replace(/[\u0000-\u001f\u007f]/g, "?");
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

function stripReplyCode(response: string): string {
  return response.replace(/^\d{3}[ -](\d\.\d{1,3}\.\d{1,3} )?/, "");
}

function normaliseAddress(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

function delay(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}
