/**
 * The verdict: what the decision API answers (SPEC §5). A decision is always a verdict, never an exception; the
 * reason says why, and `smtp` is the exact reply the relay should give.
 */
import { SMTP_REPLIES, type SmtpReply } from "./smtp-replies.ts";

export const VERDICTS = ["allow", "deny", "tempfail", "continue"] as const;
export type VerdictKind = (typeof VERDICTS)[number];

export const METHODS = ["certificate", "ldap-bind", "ldap-password"] as const;
export type Method = (typeof METHODS)[number];

/** Why a decision came out as it did. Logged, and returned to the caller; never shown to the SMTP client. */
export const REASONS = [
  "ok",
  "empty-password",
  "malformed-username",
  "authzid-not-permitted",
  "invalid-credentials",
  "no-such-user",
  "ambiguous-user",
  "unsupported-password-scheme",
  "allowance-failed",
  "directory-unavailable",
] as const;
export type Reason = (typeof REASONS)[number];

export interface Verdict {
  verdict: VerdictKind;
  authenticated: boolean;
  method: Method | null;
  identity: string | null;
  dn: string | null;
  /** The allowance query failed and the listener allows temporarily: mark every later log line of the session. */
  temporary: boolean;
  reason: Reason;
  smtp: SmtpReply;
  /** The relay should close the connection after giving the reply. */
  close: boolean;
  profile: string;
  decisionId: string;
}

/** What the core decides; the shell adds the decision id. */
export type Decision = Omit<Verdict, "decisionId"> & {
  /** Operator detail for the log line (never a secret, never sent to the SMTP client). */
  detail?: string;
};

interface Outcome {
  profile: string;
  method: Method | null;
  detail?: string;
}

export function allow(outcome: Outcome & { identity: string; dn: string | null; temporary?: boolean }): Decision {
  return {
    verdict: "allow",
    authenticated: true,
    method: outcome.method,
    identity: outcome.identity,
    dn: outcome.dn,
    temporary: outcome.temporary ?? false,
    reason: outcome.temporary ? "allowance-failed" : "ok",
    smtp: SMTP_REPLIES.authSucceeded,
    close: false,
    profile: outcome.profile,
    ...(outcome.detail === undefined ? {} : { detail: outcome.detail }),
  };
}

export function deny(reason: Exclude<Reason, "ok" | "directory-unavailable">, outcome: Outcome & { dn?: string | null }): Decision {
  return {
    verdict: "deny",
    authenticated: false,
    method: outcome.method,
    identity: null,
    dn: outcome.dn ?? null,
    temporary: false,
    reason,
    smtp: SMTP_REPLIES.authInvalid,
    close: false,
    profile: outcome.profile,
    ...(outcome.detail === undefined ? {} : { detail: outcome.detail }),
  };
}

/** A directory that cannot answer is a temporary failure, never an accept. */
export function tempfail(outcome: Outcome): Decision {
  return {
    verdict: "tempfail",
    authenticated: false,
    method: outcome.method,
    identity: null,
    dn: null,
    temporary: false,
    reason: "directory-unavailable",
    smtp: SMTP_REPLIES.authTemporaryFailure,
    close: false,
    profile: outcome.profile,
    ...(outcome.detail === undefined ? {} : { detail: outcome.detail }),
  };
}
