/**
 * What the relay knows about each session beyond smtp-server's own session object, the registry that finds it
 * (keyed by that object, which smtp-server keeps for the connection's life, STARTTLS included), and the one place
 * that runs a stage of checks and logs its refusals: `ICID 3 RCPT rejected (relay-access): <x@example.net>`.
 */
import type { SMTPServerSession } from "smtp-server";
import { SMTP_REPLIES } from "../contract/smtp-replies.ts";
import type { SenderGroupMatch } from "../mail-flow/checks/connect.ts";
import type { SessionFacts } from "../mail-flow/checks/session.ts";
import { firstRefusal, type Check, type Finding, type StageName } from "../mail-flow/stage.ts";
import type { SessionLog } from "./log.ts";
import { replyError } from "./smtp-server-adapter.ts";

export interface SessionState {
  readonly icid: number;
  readonly log: SessionLog;
  readonly senderGroup: SenderGroupMatch;
  /** The client's certificate chain from the last handshake (base64 DER, leaf first). */
  certificate: string[] | null;
  identity: string | null;
  /** How the identity was established: "certificate", "ldap-bind", ... */
  method: string | null;
  /** The envelope senders the identity owns, from its verdict (senderLogin); null: the directory gave none. */
  addresses: readonly string[] | null;
  authFailures: number;
  /** Counted in the active-session gauge and the per-client count (until onClose). */
  counted: boolean;
}

/** Where a stage's log lines go: the session's log and its connection id. */
export interface StageLog {
  readonly icid: number;
  readonly log: SessionLog;
}

export class SessionRegistry {
  readonly #states = new WeakMap<SMTPServerSession, SessionState>();
  readonly #perClient = new Map<string, number>();
  #icid = 0;

  nextIcid(): number {
    return ++this.#icid;
  }

  /** Sessions open from an address. */
  connectionsFrom(address: string): number {
    return this.#perClient.get(address) ?? 0;
  }

  open(session: SMTPServerSession, state: SessionState): void {
    this.#perClient.set(session.remoteAddress, this.connectionsFrom(session.remoteAddress) + 1);
    this.#states.set(session, state);
  }

  find(session: SMTPServerSession): SessionState | undefined {
    return this.#states.get(session);
  }

  /** The session's state; a hook of a session that was never opened answers 454 (it cannot happen, but safely). */
  stateOf(session: SMTPServerSession): SessionState {
    const state = this.#states.get(session);
    if (!state) throw replyError(SMTP_REPLIES.authTemporaryFailure, "Session state lost");
    return state;
  }

  /** Ends the session's counting once; returns its state the first time, undefined after (or if never opened). */
  close(session: SMTPServerSession): SessionState | undefined {
    const state = this.#states.get(session);
    if (!state?.counted) return undefined;
    state.counted = false;
    const left = this.connectionsFrom(session.remoteAddress) - 1;
    if (left <= 0) this.#perClient.delete(session.remoteAddress);
    else this.#perClient.set(session.remoteAddress, left);
    return state;
  }
}

/** The facts every stage after CONNECT starts from. */
export function sessionFacts(state: SessionState, session: SMTPServerSession, shuttingDown: boolean): SessionFacts {
  return { policy: state.senderGroup.policy, secure: session.secure, identity: state.identity, shuttingDown };
}

/** RFC 3207: after the handshake nothing from before it counts, identity included. */
export function forgetAuthentication(state: SessionState): void {
  state.identity = null;
  state.method = null;
  state.addresses = null;
  state.certificate = null;
}

/**
 * Runs a stage's checks: logs every warning and the refusal, if any, with the check's name, and returns the
 * refusal (null: every check passed). `subject` is what the stage is about (`<x@example.net>`).
 */
export function runStage<Facts>(
  session: StageLog,
  stage: StageName,
  checks: readonly Check<Facts>[],
  facts: Facts,
  subject: string,
): Finding | null {
  const line = (finding: Finding, outcome: string) =>
    `ICID ${session.icid} ${stage} ${outcome} (${finding.check}): ${subject}${finding.note ? `: ${finding.note}` : ""}`;
  const fields = (finding: Finding) => ({
    stage,
    check: finding.check,
    reply: `${finding.reply.code} ${finding.reply.enhanced}`,
  });
  const refusal = firstRefusal(checks, facts, (warning) =>
    session.log("warn", line(warning, "would be rejected, warn only"), fields(warning)),
  );
  if (refusal) session.log("info", line(refusal, "rejected"), fields(refusal));
  return refusal;
}

/** The TLS version the session negotiated, as the decision requests and Received: headers name it. */
export function tlsProtocolOf(session: SMTPServerSession): string {
  const options = session.tlsOptions as { version?: string } | false;
  return (options && options.version) || "TLS";
}
