/**
 * The edge relay: smtp-server in front, the decision API behind, nodemailer towards the upstream MTA.
 *
 * Per session (SPEC §7): the sender group is chosen at connect time from the host access table and its
 * mail-flow policy governs the session; STARTTLS (or implicit TLS) sends the client's certificate to
 * /v1/decide/tls where the policy verifies certificates; AUTH goes to /v1/decide/auth; MAIL/RCPT/DATA enforce
 * TLS, authentication, relaying and limits; DATA is streamed to the upstream and the client hears 250 only
 * after the upstream accepted. Every answer the API cannot give in time is a 454, never an accept.
 */
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { PassThrough, Transform, type TransformCallback } from "node:stream";
import type { TLSSocket } from "node:tls";
import nodemailer from "nodemailer";
import { SMTPServer, type SMTPServerAddress, type SMTPServerAuthentication, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from "smtp-server";
import { SMTP_REPLIES } from "../api/core/smtp-replies.ts";
import type { Verdict } from "../api/core/verdict.ts";
import { ApiClient } from "./api-client.ts";
import type { RelayConfig } from "./config.ts";
import { HIDE_AUTH_BEFORE_TLS, installSmtpServerPatches, replyError, replyText } from "./smtp-server-patches.ts";
import { ListenerPolicyHolder, type SenderGroupMatch } from "./listener-policy.ts";
import { jsonLines, sessionLog, type Logger, type SessionLog } from "./log.ts";
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

export async function startRelay(options: RelayOptions): Promise<Relay> {
  installSmtpServerPatches();
  const { config } = options;
  const log = options.log ?? jsonLines;
  const api = new ApiClient({ url: config.api.url, token: options.apiToken, timeoutMs: config.api.timeoutMs, connections: config.api.connections });
  const policy = new ListenerPolicyHolder(api, config.listener, log);
  try {
    await policy.load();
  } catch (error) {
    await api.close();
    throw new Error(`cannot load the policy of listener "${config.listener}" from ${config.api.url}: ${(error as Error).message}`, { cause: error });
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

  const stateOf = (session: SMTPServerSession): SessionState => {
    const state = states.get(session);
    if (!state) throw replyError(SMTP_REPLIES.authTemporaryFailure, "Session state lost");
    return state;
  };

  const connectionOf = (session: SMTPServerSession): ConnectionHandle | undefined => {
    for (const server of servers) {
      for (const connection of (server as unknown as { connections: Set<ConnectionHandle> }).connections) {
        if (connection.session === session) return connection;
      }
    }
    return undefined;
  };

  const common = (state: SessionState, session: SMTPServerSession) => ({
    listener: config.listener,
    session: `${session.id}`,
    client: { ip: session.remoteAddress, ...(session.hostNameAppearsAs ? { helo: String(session.hostNameAppearsAs).slice(0, 255) } : {}) },
    tls: session.secure && session.tlsOptions ? { version: protocolOf(session), cipher: session.tlsOptions.name, ...(session.servername ? { sni: String(session.servername) } : {}) } : null,
    ...(state.certificate ? { certificate: { chain: state.certificate } } : {}),
  });

  const onConnect: SMTPServerOptions["onConnect"] = (session, callback) => {
    const group = policy.match(session.remoteAddress);
    const icid = ++icidCounter;
    const slog = sessionLog(log, icid, session.id, session.remoteAddress);
    if (!group) {
      slog("info", `ICID ${icid} REJECT: ${session.remoteAddress} matches no sender group`);
      return callback(replyError(SMTP_REPLIES.accessDenied));
    }
    slog("info", `New SMTP ICID ${icid} interface ${session.localAddress}:${session.localPort} address ${session.remoteAddress} range ${group.group} policy ${group.policyName}`);
    if (group.policy.behaviour === "reject" || group.policy.behaviour === "tcprefuse") {
      slog("info", `ICID ${icid} REJECT SG ${group.group} match ${session.remoteAddress}`);
      return callback(replyError(SMTP_REPLIES.accessDenied));
    }
    const count = (perClient.get(session.remoteAddress) ?? 0) + 1;
    if (count > group.policy.maxConnectionsPerClient) {
      slog("warn", `ICID ${icid} TEMPFAIL: more than ${group.policy.maxConnectionsPerClient} connections from ${session.remoteAddress}`);
      return callback(replyError(SMTP_REPLIES.tooManyConnections));
    }
    perClient.set(session.remoteAddress, count);
    // AUTH is listed in EHLO only where this session could use it (SPEC §3 B: after TLS when so configured).
    const rules = group.policy;
    if (rules.smtpAuth === "off") session.disabledCommands = ["AUTH"];
    else if (rules.requireTlsToOfferAuth || rules.tls === "required") (session as unknown as Record<symbol, unknown>)[HIDE_AUTH_BEFORE_TLS] = true;
    states.set(session, { icid, log: slog, group, certificate: null, identity: null, method: null, authFailures: 0, counted: true });
    callback();
  };

  const onClose: SMTPServerOptions["onClose"] = (session) => {
    const state = states.get(session);
    if (!state?.counted) return;
    state.counted = false;
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
      state.log("info", `ICID ${state.icid} TLS success protocol ${protocol} cipher ${tlsSocket.getCipher?.()?.name ?? "unknown"}`);
      // RFC 3207: nothing from before the handshake counts any more, identity included.
      state.identity = null;
      state.method = null;
      state.certificate = null;
      if (!state.group.policy.verifyClientCertificate) return callback();
      state.certificate = peerChain(tlsSocket);
      let verdict: Verdict;
      try {
        verdict = await api.decideTls({ ...common(state, session), tls: { version: protocol, cipher: tlsSocket.getCipher?.()?.name ?? "unknown" }, certificate: state.certificate ? { chain: state.certificate } : null }, `${session.id}-tls`);
      } catch (error) {
        state.log("error", `ICID ${state.icid} Cert Auth: API unavailable: ${(error as Error).message}`);
        return callback(replyError(SMTP_REPLIES.authTemporaryFailure));
      }
      if (verdict.verdict === "allow" && verdict.identity) {
        state.identity = verdict.identity;
        state.method = "certificate";
        session.user = verdict.identity;
        state.log("info", `ICID ${state.icid} Cert Auth: succeeded for user: ${verdict.identity} with profile: ${verdict.profile}`, { decisionId: verdict.decisionId });
        return callback();
      }
      state.log("info", `ICID ${state.icid} Cert Auth: ${verdict.verdict === "continue" ? "no decision" : "failed"} reason ${verdict.reason}`, { decisionId: verdict.decisionId, verdict: verdict.verdict });
      if (verdict.close || verdict.verdict === "deny") return callback(replyError(verdict.smtp ?? SMTP_REPLIES.certificateRequired));
      callback();
    })().catch((error: unknown) => callback(error as Error));
  };

  const onAuth: SMTPServerOptions["onAuth"] = (auth: SMTPServerAuthentication, session, callback) => {
    void (async () => {
      const state = stateOf(session);
      const rules = state.group.policy;
      if (state.identity) return callback(replyError(SMTP_REPLIES.alreadyAuthenticated));
      if (rules.smtpAuth === "off") return callback(replyError(SMTP_REPLIES.authNotAvailable));
      if (!session.secure && rules.tls === "required") return callback(replyError(SMTP_REPLIES.startTlsFirst));
      if (!session.secure && rules.requireTlsToOfferAuth) return callback(replyError(SMTP_REPLIES.encryptionRequired));
      if (auth.method !== "PLAIN" && auth.method !== "LOGIN") return callback(replyError(SMTP_REPLIES.unknownMechanism));
      let verdict: Verdict;
      try {
        verdict = await api.decideAuth(
          {
            ...common(state, session),
            mechanism: auth.method,
            username: auth.username ?? "",
            password: auth.password ?? "",
            ...(auth.authzid ? { authzid: auth.authzid } : {}),
            certificate: state.certificate ? { chain: state.certificate } : null,
          },
          `${session.id}-auth-${state.authFailures}`,
        );
      } catch (error) {
        state.log("error", `SMTP Auth: (ICID ${state.icid}) API unavailable: ${(error as Error).message}`);
        return callback(replyError(SMTP_REPLIES.authTemporaryFailure));
      }
      const user = printable(auth.username ?? "", 128);
      if (verdict.verdict === "allow" && verdict.identity) {
        if (verdict.temporary) state.log.markTemporary();
        state.identity = verdict.identity;
        state.method = verdict.method;
        state.log("info", `SMTP Auth: (ICID ${state.icid}) succeeded for user: ${user} using AUTH mechanism: ${auth.method} with profile: ${verdict.profile}`, {
          decisionId: verdict.decisionId,
          ...(verdict.temporary ? { note: "allowance query failed; allowed temporarily by the listener" } : {}),
        });
        return callback(null, { user: verdict.identity });
      }
      if (verdict.verdict === "tempfail") {
        state.log("warn", `SMTP Auth: (ICID ${state.icid}) temporary failure for user: ${user} reason ${verdict.reason}`, { decisionId: verdict.decisionId });
        return callback(replyError(verdict.smtp ?? SMTP_REPLIES.authTemporaryFailure));
      }
      state.authFailures += 1;
      state.log("info", `SMTP Auth: (ICID ${state.icid}) failed for user: ${user} using AUTH mechanism: ${auth.method} reason ${verdict.reason}`, { decisionId: verdict.decisionId });
      // A delay makes guessing slow; the reply never says which of user name or password was wrong.
      await delay(config.limits.authFailureDelayMs);
      if (verdict.close || state.authFailures >= config.limits.maxAuthFailures) {
        const connection = connectionOf(session);
        callback(replyError(verdict.close ? (verdict.smtp ?? SMTP_REPLIES.authInvalid) : SMTP_REPLIES.tooManyAuthFailures));
        setImmediate(() => connection?.close());
        return;
      }
      callback(replyError(verdict.smtp ?? SMTP_REPLIES.authInvalid));
    })().catch((error: unknown) => callback(error as Error));
  };

  const onMailFrom: SMTPServerOptions["onMailFrom"] = (address, session, callback) => {
    const state = stateOf(session);
    const rules = state.group.policy;
    if (!session.secure && rules.tls === "required") return callback(replyError(SMTP_REPLIES.startTlsFirst));
    if (!state.identity && rules.smtpAuth === "required") return callback(replyError(SMTP_REPLIES.authRequired));
    const declared = Number(address.args && typeof address.args === "object" ? (address.args as Record<string, string>).SIZE : 0);
    if (Number.isFinite(declared) && declared > rules.maxMessageBytes) return callback(replyError(SMTP_REPLIES.messageTooBig));
    state.log("info", `ICID ${state.icid} MID from: <${printable(address.address, 320)}>`);
    callback();
  };

  const onRcptTo: SMTPServerOptions["onRcptTo"] = (address, session, callback) => {
    const state = stateOf(session);
    const rules = state.group.policy;
    if (session.envelope.rcptTo.length >= rules.maxRecipients) return callback(replyError(SMTP_REPLIES.tooManyRecipients));
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

  const relayMessage = async (stream: SMTPServerDataStream, session: SMTPServerSession, state: SessionState): Promise<string | Error> => {
    const ended = new Promise<void>((resolve) => stream.once("end", resolve));
    const limit = state.group.policy.maxMessageBytes;
    const counter = new ByteLimit(limit);
    const body = new PassThrough();
    body.write(receivedHeader(session, state, config.hostname));
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
      const info = await upstream.sendMail({ envelope: { from, to }, raw: body });
      await ended;
      if (stream.sizeExceeded || counter.exceeded) return replyError(SMTP_REPLIES.messageTooBig);
      if (info.rejected.length > 0) {
        state.log("warn", `ICID ${state.icid} upstream refused ${info.rejected.length} of ${to.length} recipients after accepting others`, { rejected: info.rejected });
      }
      state.log("info", `ICID ${state.icid} Message relayed to ${config.upstream.host}:${config.upstream.port}: ${printable(info.response, 200)}`, { recipients: to.length, bytes: counter.bytes });
      return replyText({ code: 250, enhanced: "2.0.0", text: "" }, `Ok: relayed (${printable(info.response, 120)})`);
    } catch (error) {
      // Whatever happened upstream, read the rest of the client's DATA so the session stays in step.
      stream.unpipe(counter);
      stream.resume();
      await ended;
      if (stream.sizeExceeded || counter.exceeded) {
        state.log("info", `ICID ${state.icid} Message too big (over ${limit} bytes): not relayed`);
        return replyError(SMTP_REPLIES.messageTooBig);
      }
      const failure = error as Error & { responseCode?: number; response?: string; code?: string };
      state.log("warn", `ICID ${state.icid} Upstream delivery failed: ${printable(failure.response ?? failure.message, 300)}`, { code: failure.code, responseCode: failure.responseCode });
      if (failure.responseCode && failure.responseCode >= 500 && failure.responseCode < 600) {
        const enhanced = /\b5\.\d{1,3}\.\d{1,3}\b/.exec(failure.response ?? "")?.[0] ?? "5.0.0";
        return replyError({ code: failure.responseCode, enhanced, text: "" }, `Upstream refused the message: ${printable(stripReplyCode(failure.response ?? ""), 200)}`);
      }
      if (failure.responseCode) {
        // SPEC §7: a 4xx with the upstream's reason.
        const reason = printable(stripReplyCode(failure.response ?? ""), 200);
        return replyError(SMTP_REPLIES.upstreamFailed, reason ? `${SMTP_REPLIES.upstreamFailed.text}: ${reason}` : SMTP_REPLIES.upstreamFailed.text);
      }
      return replyError(SMTP_REPLIES.upstreamUnavailable);
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
    closeTimeout: config.limits.shutdownGraceMs,
    maxAllowedUnauthenticatedCommands: config.limits.maxUnauthenticatedCommands,
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
    const netServer = (server as unknown as { server: { prependListener(event: "connection", listener: (socket: Socket) => void): void } }).server;
    netServer.prependListener("connection", (socket: Socket) => {
      const match = policy.match(normaliseAddress(socket.remoteAddress ?? ""));
      if (match?.policy.behaviour === "tcprefuse") socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(address.port, address.host, () => resolve());
    });
    server.on("error", (error: Error) => log({ level: "error", msg: "SMTP server error", error: error.message }));
    return ((server as unknown as { server: { address(): AddressInfo } }).server.address()).port;
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
      if (request.method === "GET" && request.url === "/healthz") {
        response.writeHead(200, { "content-type": "application/json" });
        response.end(JSON.stringify({ status: "ok", listener: config.listener, policyRefreshError: policy.lastError }));
        return;
      }
      response.writeHead(404).end();
    });
    const address = config.listen.health;
    await new Promise<void>((resolve) => health?.listen(address.port, address.host, resolve));
    ports.health = (health.address() as AddressInfo).port;
  }

  log({ level: "info", msg: "relay listening", listener: config.listener, ports, upstream: `${config.upstream.host}:${config.upstream.port}` });

  return {
    ports,
    policy,
    close: async () => {
      policy.stopRefreshing();
      // smtp-server stops accepting at once and gives open sessions closeTimeout (shutdownGraceMs) to finish.
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
      await new Promise<void>((resolve) => (health ? health.close(() => resolve()) : resolve()));
      upstream.close();
      await api.close();
    },
  };
}

/** Counts the bytes of DATA and stops passing them on past the policy's limit (the upstream never gets it all). */
class ByteLimit extends Transform {
  bytes = 0;
  exceeded = false;
  readonly #limit: number;

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
    done(null, chunk);
  }
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
  const tls = session.secure && session.tlsOptions ? ` (${printable(protocolOf(session), 20)} ${printable(session.tlsOptions.name, 60)})` : "";
  const auth = state.identity ? `\r\n\t(authenticated as ${printable(state.identity, 100).replace(/[()]/g, "")} by ${state.method ?? "smtpgate"})` : "";
  const recipient = session.envelope.rcptTo.length === 1 ? `\r\n\tfor <${printable(session.envelope.rcptTo[0]?.address ?? "", 320)}>` : "";
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
