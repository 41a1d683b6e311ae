/**
 * The brute-force limiter around one SMTP AUTH decision: consulted before the decision cache and the directory,
 * told the outcome after. What counts as a guess: a wrong password or an unknown user (each costs the directory a
 * search or a bind). What earns trust: an allow. The rest (refused without the directory, a tempfail, an
 * allowance that failed) changes nothing.
 */
import { LimiterUnavailable, type BruteForceLimiter } from "../core/brute-force.ts";
import { rateLimited, tempfail, type Decision } from "../core/verdict.ts";
import type { Method } from "../../contract/verdict.ts";

export interface GuardedAttempt {
  listener: string;
  client?: { ip: string } | undefined;
  username: string;
  password: string;
}

/**
 * `decide` gets the user's generation for its cache keys, or null when the limiter could not read it (then it must
 * not use the cache: a flushed allow could not be told from a live one).
 */
export async function guardSmtpAuth(
  limiter: BruteForceLimiter | null,
  attempt: GuardedAttempt,
  outcome: { profile: string; method: Method },
  decide: (generation: number | null) => Promise<Decision>,
): Promise<Decision> {
  // A caller that sent no client address (smtpgate test-auth) is not limited.
  if (!limiter || !attempt.client) return await decide(null);
  let consulted;
  try {
    consulted = await limiter.consult({
      listener: attempt.listener,
      clientIp: attempt.client.ip,
      username: attempt.username,
      password: attempt.password,
    });
  } catch (error) {
    if (!(error instanceof LimiterUnavailable)) throw error;
    return tempfail({ ...outcome, reason: "rate-limited", detail: `brute-force store unavailable: ${error.message}` });
  }
  const { block } = consulted;
  if (block && consulted.enforced)
    return rateLimited({
      ...outcome,
      block,
      detail: `${block.bucket} bucket full, retry after ${block.retryAfterSeconds} s`,
    });
  const decision = await decide(consulted.generation);
  await consulted.settle(
    decision.verdict === "allow"
      ? "success"
      : decision.reason === "invalid-credentials" || decision.reason === "no-such-user"
        ? "failure"
        : "neutral",
  );
  return block ? { ...decision, bruteForce: { ...block, enforced: false } } : decision;
}
