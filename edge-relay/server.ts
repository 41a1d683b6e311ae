/**
 * smtp-server bound to the stage lists of mail-flow/: each hook gathers the facts, runs its stage and answers
 * with the first refusal's reply (or goes on). The STARTTLS and AUTH hooks, which ask the Decider, are in
 * decisions.ts; DATA is handed to delivery.ts; smtp-server's own behaviour is adjusted in smtp-server-adapter.ts.
 */
import type { Socket } from "node:net";
import type { SMTPServerOptions, SMTPServerSession } from "smtp-server";
import { SMTP_REPLIES } from "../contract/smtp-replies.ts";
import { CONNECT_CHECKS, type ConnectFacts } from "../mail-flow/checks/connect.ts";
import { MAIL_CHECKS } from "../mail-flow/checks/mail.ts";
import { RCPT_CHECKS } from "../mail-flow/checks/rcpt.ts";
import type { RelayContext } from "./context.ts";
import { decisionHooks } from "./decisions.ts";
import { sessionLog } from "./log.ts";
import type { SessionResult } from "./metrics.ts";
import { printable } from "./printable.ts";
import { runStage, sessionFacts, type SessionState } from "./session.ts";
import { DEADLINE_WORDS } from "./slow-clients.ts";
import { AdaptedSmtpServer, COMMANDS_NEEDING_TLS, replyError } from "./smtp-server-adapter.ts";

/** Per check that refuses a connection: the session metric's result, and AsyncOS's own line (operators grep it). */
const CONNECT_REFUSALS: Readonly<Record<string, { result: SessionResult; asyncOs(facts: ConnectFacts): string }>> = {
  "shutting-down": { result: "shutting-down", asyncOs: () => "TEMPFAIL: shutting down" },
  "sender-group": { result: "rejected", asyncOs: (facts) => `REJECT: ${facts.client} matches no sender group` },
  "policy-behaviour": {
    result: "rejected",
    asyncOs: (facts) => `REJECT SG ${facts.senderGroup?.group} match ${facts.client}`,
  },
  "connection-limit": {
    result: "too-many-connections",
    asyncOs: (facts) =>
      `TEMPFAIL: more than ${facts.senderGroup?.policy.maxConnectionsPerClient} connections from ${facts.client}`,
  },
};

/**
 * One SMTP listener of the relay (STARTTLS, or implicit TLS when `secure`), listening; all share the relay's
 * context. Resolves with the server and its port once it listens.
 */
export async function startSmtpListener(
  relay: RelayContext,
  secure: boolean,
  tls: { key: string; cert: string },
  address: { host: string; port: number },
): Promise<{ server: AdaptedSmtpServer; port: number }> {
  const { config, metrics, policy, sessions } = relay;
  const decisions = decisionHooks(relay);
  const policyOf = (session: SMTPServerSession) => sessions.find(session)?.senderGroup.policy;

  const onConnect: SMTPServerOptions["onConnect"] = function onConnect(session, callback) {
    const senderGroup = policy.match(session.remoteAddress);
    const icid = sessions.nextIcid();
    const log = sessionLog(relay.log, icid, session.id, session.remoteAddress);
    const facts: ConnectFacts = {
      shuttingDown: relay.isShuttingDown(),
      client: session.remoteAddress,
      senderGroup,
      connectionsFromClient: sessions.connectionsFrom(session.remoteAddress) + 1,
    };
    if (senderGroup && !facts.shuttingDown)
      log(
        "info",
        `New SMTP ICID ${icid} interface ${session.localAddress}:${session.localPort} address ${session.remoteAddress} range ${senderGroup.group} policy ${senderGroup.policyName}`,
      );
    const refusal = runStage({ icid, log }, "CONNECT", CONNECT_CHECKS, facts, session.remoteAddress);
    if (refusal || !senderGroup) {
      const known = refusal ? CONNECT_REFUSALS[refusal.check] : undefined;
      if (known) log(refusal?.check === "connection-limit" ? "warn" : "info", `ICID ${icid} ${known.asyncOs(facts)}`);
      metrics.sessions.inc({ policy: senderGroup?.policyName ?? "none", result: known?.result ?? "rejected" });
      // No sender group and no refusal cannot be (sender-group refuses it); the type system does not know that.
      return callback(replyError(refusal?.reply ?? SMTP_REPLIES.accessDenied));
    }
    // AUTH is listed in EHLO only where this session could use it (docs/flows.md#flow-b-ldap-smtp-auth), see hidesAuthBeforeTls below.
    const rules = senderGroup.policy;
    const disabled: string[] = [];
    if (rules.smtpAuth === "off") disabled.push("AUTH");
    if (rules.tls === "required") disabled.push(...COMMANDS_NEEDING_TLS);
    if (disabled.length > 0) session.disabledCommands = disabled;
    sessions.open(session, {
      icid,
      log,
      senderGroup,
      certificate: null,
      identity: null,
      method: null,
      addresses: null,
      authFailures: 0,
      counted: true,
    });
    metrics.sessions.inc({ policy: senderGroup.policyName, result: "accepted" });
    metrics.sessionsActive.inc();
    callback();
  };

  const onClose: SMTPServerOptions["onClose"] = function onClose(session) {
    const state = sessions.close(session);
    if (!state) return;
    metrics.sessionsActive.dec();
    state.log("info", `ICID ${state.icid} close`);
  };

  const onMailFrom: SMTPServerOptions["onMailFrom"] = function onMailFrom(address, session, callback) {
    const state = sessions.stateOf(session);
    const parameters = (address.args as Record<string, string> | false | undefined) || undefined;
    const declared = parameters?.SIZE === undefined ? null : Number(parameters.SIZE);
    const facts = {
      ...sessionFacts(state, session, relay.isShuttingDown()),
      sender: address.address,
      declaredSize: declared !== null && Number.isFinite(declared) ? declared : null,
      addresses: state.addresses,
    };
    const sender = `<${printable(address.address, 320)}>`;
    const refusal = runStage(state, "MAIL", MAIL_CHECKS, facts, sender);
    if (refusal) return callback(replyError(refusal.reply));
    state.log("info", `ICID ${state.icid} MID from: ${sender}`);
    callback();
  };

  const onRcptTo: SMTPServerOptions["onRcptTo"] = function onRcptTo(address, session, callback) {
    const state = sessions.stateOf(session);
    const facts = {
      // A transaction begun before close() may finish: RCPT does not look at shutting down.
      ...sessionFacts(state, session, false),
      recipient: address.address,
      recipientsSoFar: session.envelope.rcptTo.length,
      acceptedDomains: policy.acceptedDomains,
    };
    const refusal = runStage(state, "RCPT", RCPT_CHECKS, facts, `<${printable(address.address, 320)}>`);
    callback(refusal ? replyError(refusal.reply) : undefined);
  };

  const onData: SMTPServerOptions["onData"] = function onData(stream, session, callback) {
    const state: SessionState = sessions.stateOf(session);
    relay.delivery.relay(stream, session, state).then(
      function answerData(reply) {
        if (typeof reply === "string") callback(null, reply);
        else callback(reply);
      },
      (error: unknown) => callback(error as Error),
    );
  };

  const policies = Object.values(policy.policy.mailFlowPolicies);
  const options: SMTPServerOptions = {
    secure,
    name: config.hostname,
    banner: "smtpgate",
    key: tls.key,
    cert: tls.cert,
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
    // The grace period is the relay's own (Relay.close); once it is over, smtp-server's close() ends the rest.
    closeTimeout: 1,
    disableReverseLookup: true,
    logger: false,
    onConnect,
    onSecure: decisions.onSecure,
    onAuth: decisions.onAuth,
    onMailFrom,
    onRcptTo,
    onData,
    onClose,
  };
  const server = new AdaptedSmtpServer(options, {
    hidesAuthBeforeTls(session) {
      const rules = policyOf(session);
      return rules ? rules.requireTlsToOfferAuth || rules.tls === "required" : true;
    },
    requiresTls: (session) => policyOf(session)?.tls === "required",
    beforeAuth: decisions.beforeAuth,
    refused(session, check, reply) {
      const state = sessions.find(session);
      state?.log("info", `ICID ${state.icid} SMTP rejected (${check}): ${printable(reply, 300)}`, { check, reply });
    },
    greetingDelayMs: () => relay.config.limits.greetingDelayMs,
    slowClients: {
      limits: () => relay.config.limits,
      expired(session, deadline, limits) {
        metrics.deadlineCloses.inc({ deadline });
        const state = sessions.find(session);
        const limitMs =
          deadline === "command"
            ? limits.commandDeadlineMs
            : deadline === "data"
              ? limits.dataDeadlineMs
              : limits.maxSessionMs;
        const text = `${DEADLINE_WORDS[deadline]} (${limitMs} ms) passed: 421 4.4.2, closing`;
        if (state) state.log("warn", `ICID ${state.icid} ${text}`, { deadline });
        else relay.log({ level: "warn", msg: text, deadline, client: session.remoteAddress });
      },
    },
  });
  // tcprefuse: closed before smtp-server even greets (AsyncOS's TCPREFUSE), decided on the raw socket.
  server.onRawConnection(function refuseTcp(socket: Socket) {
    const match = policy.match(normaliseAddress(socket.remoteAddress ?? ""));
    if (match?.policy.behaviour === "tcprefuse") {
      metrics.sessions.inc({ policy: match.policyName, result: "tcprefuse" });
      socket.destroy();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(address.port, address.host, () => resolve());
  });
  server.on("error", function onServerError(error: Error & { meta?: { stage?: string; remoteAddress?: string } }) {
    // smtp-server marks failed handshakes (STARTTLS and implicit TLS) with meta.stage "connect". No version was
    // agreed on (what the socket reports then is only the highest it would have offered): protocol "unknown".
    if (error.meta?.stage === "connect") {
      metrics.tls.inc({ result: "failure", protocol: "unknown" });
      relay.log({
        level: "warn",
        msg: `TLS failed: ${printable(error.message.trim(), 300)}`,
        client: error.meta.remoteAddress ?? (error as { remoteAddress?: string }).remoteAddress,
      });
      return;
    }
    relay.log({ level: "error", msg: "SMTP server error", error: error.message });
  });
  return { server, port: server.port };
}

function normaliseAddress(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}
