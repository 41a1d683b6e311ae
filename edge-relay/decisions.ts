/**
 * The hooks that ask the Decider: STARTTLS (the client certificate, docs/flows.md, flows A and C) and AUTH (the credentials,
 * docs/flows.md#flow-b-ldap-smtp-auth), with the AUTH stage's checks before it. A Decider that does not answer is a 454, never an accept.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { TLSSocket } from "node:tls";
import type { SMTPServerOptions, SMTPServerSession } from "smtp-server";
import type { AuthRequest, TlsRequest } from "../contract/decider.ts";
import { SMTP_REPLIES, type SmtpReply } from "../contract/smtp-replies.ts";
import type { Verdict } from "../contract/verdict.ts";
import { AUTH_CHECKS, type AUTH_MECHANISMS } from "../mail-flow/checks/auth.ts";
import { STARTTLS_CHECKS } from "../mail-flow/checks/starttls.ts";
import type { RelayContext } from "./context.ts";
import { peerChain } from "./peer-chain.ts";
import { printable } from "./printable.ts";
import { forgetAuthentication, runStage, sessionFacts, tlsProtocolOf, type SessionState } from "./session.ts";
import { replyError } from "./smtp-server-adapter.ts";

type Mechanism = (typeof AUTH_MECHANISMS)[number];

export function decisionHooks(relay: RelayContext) {
  const { config, decider, metrics, sessions } = relay;

  /** A Decider call, timed, its failures counted. */
  const decide = async (call: "tls" | "auth", run: () => Promise<Verdict>): Promise<Verdict> => {
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

  /** The fields every decision request carries. */
  const requestBase = (state: SessionState, session: SMTPServerSession) => ({
    listener: config.listener,
    session: `${session.id}`,
    client: {
      ip: session.remoteAddress,
      ...(session.hostNameAppearsAs ? { helo: String(session.hostNameAppearsAs).slice(0, 255) } : {}),
    },
  });

  /** The AUTH stage: at the AUTH command, and again once the credentials are in (a shutdown may have begun). */
  function authRefusal(session: SMTPServerSession, mechanism: string): SmtpReply | null {
    const state = sessions.stateOf(session);
    const facts = { ...sessionFacts(state, session, relay.isShuttingDown()), mechanism };
    return runStage(state, "AUTH", AUTH_CHECKS, facts, `mechanism ${printable(mechanism, 20)}`)?.reply ?? null;
  }

  const onSecure: SMTPServerOptions["onSecure"] = function onSecure(socket, session, callback) {
    void (async () => {
      const state = sessions.stateOf(session);
      const tlsSocket = socket as TLSSocket;
      const protocol = tlsSocket.getProtocol?.() ?? "unknown";
      const cipher = tlsSocket.getCipher?.()?.name ?? "unknown";
      metrics.tls.inc({ result: "success", protocol });
      state.log("info", `ICID ${state.icid} TLS success protocol ${protocol} cipher ${cipher}`);
      forgetAuthentication(state);
      const refusal = runStage(state, "STARTTLS", STARTTLS_CHECKS, { shuttingDown: relay.isShuttingDown() }, protocol);
      if (refusal) return callback(replyError(refusal.reply));
      if (!state.senderGroup.policy.verifyClientCertificate) return callback();
      const certificate = peerChain(tlsSocket);
      state.certificate = certificate;
      const request: TlsRequest = {
        ...requestBase(state, session),
        tls: { version: protocol, cipher },
        certificate: certificate ? { chain: certificate } : null,
      };
      let verdict: Verdict;
      try {
        verdict = await decide("tls", () => decider.decideTls(request, { requestId: `${session.id}-tls` }));
      } catch (error) {
        metrics.auth.inc({ method: "certificate", result: "tempfail" });
        state.log("error", `ICID ${state.icid} Cert Auth: API unavailable: ${(error as Error).message}`);
        return callback(replyError(SMTP_REPLIES.authTemporaryFailure));
      }
      if (verdict.verdict === "allow" && verdict.identity) {
        metrics.auth.inc({ method: "certificate", result: "success" });
        state.identity = verdict.identity;
        state.method = "certificate";
        state.addresses = verdict.addresses;
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

  const onAuth: SMTPServerOptions["onAuth"] = function onAuth(auth, session, callback) {
    void (async () => {
      const state = sessions.stateOf(session);
      const refusal = authRefusal(session, auth.method);
      if (refusal) return callback(replyError(refusal));
      const request: AuthRequest = {
        ...requestBase(state, session),
        tls:
          session.secure && session.tlsOptions
            ? {
                version: tlsProtocolOf(session),
                cipher: session.tlsOptions.name,
                ...(session.servername ? { sni: String(session.servername) } : {}),
              }
            : null,
        // The AUTH stage let only these through.
        mechanism: auth.method as Mechanism,
        username: auth.username ?? "",
        password: auth.password ?? "",
        ...(auth.authzid ? { authzid: auth.authzid } : {}),
        certificate: state.certificate ? { chain: state.certificate } : null,
      };
      let verdict: Verdict;
      try {
        verdict = await decide("auth", () =>
          decider.decideAuth(request, { requestId: `${session.id}-auth-${state.authFailures}` }),
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
        state.addresses = verdict.addresses;
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
      // A brute-force block (reason rate-limited) is a guess like a wrong password: it waits the failure delay
      // and counts towards maxAuthFailures, so a client that keeps trying is closed with 421; it still says 454.
      const blocked = verdict.verdict === "tempfail" && verdict.reason === "rate-limited";
      if (verdict.verdict === "tempfail" && !blocked) {
        metrics.auth.inc({ method: "password", result: "tempfail" });
        state.log(
          "warn",
          `SMTP Auth: (ICID ${state.icid}) temporary failure for user: ${user} reason ${verdict.reason}`,
          { decisionId: verdict.decisionId },
        );
        return callback(replyError(verdict.smtp ?? SMTP_REPLIES.authTemporaryFailure));
      }
      state.authFailures += 1;
      metrics.auth.inc({ method: "password", result: blocked ? "tempfail" : "failure" });
      state.log(
        "info",
        `SMTP Auth: (ICID ${state.icid}) failed for user: ${user} using AUTH mechanism: ${auth.method} reason ${verdict.reason}`,
        { decisionId: verdict.decisionId },
      );
      // A delay makes guessing slow; the reply never says which of user name or password was wrong.
      if (config.limits.authFailureDelayMs > 0) await sleep(config.limits.authFailureDelayMs);
      if (verdict.close || state.authFailures >= config.limits.maxAuthFailures) {
        callback(
          replyError(verdict.close ? (verdict.smtp ?? SMTP_REPLIES.authInvalid) : SMTP_REPLIES.tooManyAuthFailures),
        );
        relay.closeSession(session);
        return;
      }
      callback(replyError(verdict.smtp ?? (blocked ? SMTP_REPLIES.authTemporaryFailure : SMTP_REPLIES.authInvalid)));
    })().catch((error: unknown) => callback(error as Error));
  };

  return { beforeAuth: authRefusal, onSecure, onAuth };
}
