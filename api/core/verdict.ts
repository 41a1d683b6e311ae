/**
 * Building verdicts: the core's decisions are verdicts without their decision id (the shell adds it). The
 * verdict's shape is the contract's (contract/verdict.ts); these builders keep every decision consistent with it.
 */
import { SMTP_REPLIES, type SmtpReply } from "../../contract/smtp-replies.ts";
import type { Method, Reason, Verdict, VerdictKind } from "../../contract/verdict.ts";
import type { AskedQuery } from "./allowance.ts";
import type { Block } from "./brute-force.ts";

type BucketKind = Block["bucket"];

/** What the core decides; the shell adds the decision id. */
export type Decision = Omit<Verdict, "decisionId"> & {
  /** Operator detail for the log line (never a secret, never sent to the SMTP client). */
  detail?: string;
  /**
   * Whether the profile's decision cache answered (`hit`), was asked and missed (`miss`), or gave an allow past its
   * TTL because the directory was unavailable (`stale`); absent when no cache was involved. Log and metrics only:
   * the verdict the caller gets has the same shape either way.
   */
  cache?: "hit" | "miss" | "stale";
  /** The last query asked before a deny (filled filter and base), for the log line. */
  query?: AskedQuery;
  /** The brute-force limiter found a bucket full (api/core/brute-force.ts): blocked, or only observed. */
  bruteForce?: { bucket: BucketKind; enforced: boolean; retryAfterSeconds: number };
};

interface Outcome {
  profile: string;
  method: Method | null;
  detail?: string | undefined;
  /** Overrides the usual reply of the verdict. */
  smtp?: SmtpReply;
  close?: boolean;
  query?: AskedQuery | undefined;
}

/** The fields every decision that does not authenticate shares; `allow` sets its own. */
function notAuthenticated(
  verdict: Exclude<VerdictKind, "allow">,
  reason: Reason,
  smtp: SmtpReply | null,
  outcome: Outcome & { dn?: string | null },
): Decision {
  return {
    verdict,
    authenticated: false,
    method: outcome.method,
    identity: null,
    dn: outcome.dn ?? null,
    temporary: false,
    reason,
    retryAfter: null,
    addresses: null,
    smtp,
    close: verdict === "continue" ? false : (outcome.close ?? false),
    profile: outcome.profile,
    ...(outcome.detail === undefined ? {} : { detail: outcome.detail }),
    ...(outcome.query === undefined ? {} : { query: outcome.query }),
  };
}

export function allow(
  outcome: Outcome & {
    identity: string;
    dn: string | null;
    temporary?: boolean;
    /** The envelope senders the identity owns, where the query names address attributes. */
    addresses?: readonly string[] | null;
  },
): Decision {
  return {
    verdict: "allow",
    authenticated: true,
    method: outcome.method,
    identity: outcome.identity,
    dn: outcome.dn,
    temporary: outcome.temporary ?? false,
    reason: outcome.temporary ? "allowance-failed" : "ok",
    retryAfter: null,
    addresses: outcome.addresses ? [...outcome.addresses] : null,
    smtp: outcome.smtp ?? SMTP_REPLIES.authSucceeded,
    close: outcome.close ?? false,
    profile: outcome.profile,
    ...(outcome.detail === undefined ? {} : { detail: outcome.detail }),
  };
}

export function deny(
  reason: Exclude<Reason, "ok" | "directory-unavailable">,
  outcome: Outcome & { dn?: string | null },
): Decision {
  return notAuthenticated("deny", reason, outcome.smtp ?? SMTP_REPLIES.authInvalid, outcome);
}

/** A directory (or revocation source) that cannot answer is a temporary failure, never an accept. */
export function tempfail(
  outcome: Outcome & { reason?: "directory-unavailable" | "certificate-revocation-unknown" | "rate-limited" },
): Decision {
  // Whatever DN was reached, a tempfail names none: nothing was decided about it.
  return notAuthenticated(
    "tempfail",
    outcome.reason ?? "directory-unavailable",
    outcome.smtp ?? SMTP_REPLIES.authTemporaryFailure,
    { ...outcome, dn: null },
  );
}

/** No decision yet: the session goes on and the relay offers SMTP AUTH. The reason says why. */
export function proceed(reason: Reason, outcome: Outcome & { dn?: string | null }): Decision {
  return notAuthenticated("continue", reason, null, outcome);
}

/**
 * A full brute-force bucket: 454 and when to try again, decided before any directory traffic, so it says nothing
 * about the password (the same answer whether it was right or not).
 */
export function rateLimited(outcome: Outcome & { block: Block }): Decision {
  return {
    ...tempfail({ ...outcome, reason: "rate-limited" }),
    retryAfter: outcome.block.retryAfterSeconds,
    bruteForce: { ...outcome.block, enforced: true },
  };
}
