/**
 * An SMTP AUTH decision through its profile's decision cache, with the brute-force limiter's user generations in
 * every key, so a flush of a user (POST /v1/users/flush) drops their cached decisions on every replica sharing the
 * store. Keys hold the name as typed: `ALICE` and `alice` are two entries whose decisions name the same identity.
 */
import type { CacheKeys, CachePolicy } from "../cache/decision-cache.ts";
import { userKeyOf, type BruteForceLimiter } from "../core/brute-force.ts";
import { refuseWithoutDirectory } from "../core/smtp-auth.ts";
import type { Decision } from "../core/verdict.ts";
import type { LdapProfile } from "./profiles.ts";
import type { AuthRequest } from "./requests.ts";

export interface CachedAuthDeps {
  /** Decides from the directory (a miss). */
  decide: () => Promise<Decision>;
  cacheKeys: CacheKeys;
  bruteForce: BruteForceLimiter | null;
}

/** `generation`: the user's flush generation, part of every cache key; null = do not use the cache. */
export async function smtpAuthThroughCache(
  request: AuthRequest,
  profile: LdapProfile,
  generation: number | null,
  { decide, cacheKeys, bruteForce }: CachedAuthDeps,
): Promise<Decision> {
  const cache = profile.cache;
  // What is refused without the directory costs nothing to decide again, and is never worth an entry.
  if (!cache || refuseWithoutDirectory(request, profile.name, profile.query)) return await decide();
  if (generation === null && bruteForce) return await decide();

  // Every input the decision depends on: the listener too, since it decides what an allowance failure means.
  const { username, password, authzid } = request;
  const key = cacheKeys.key(
    "auth",
    profile.name,
    request.listener,
    username,
    password,
    authzid === undefined ? "-" : "+",
    authzid ?? "",
    String(generation ?? 0),
  );
  const cached = cache.get(key);
  // A hit also needs its identity unflushed since it was stored (an unreadable generation is no hit).
  if (cached && cached.identityGeneration !== null) {
    if ((await identityGeneration(bruteForce, cached.decision, username)) === cached.identityGeneration)
      return { ...cached.decision, cache: "hit" };
  }
  const decision = await decide();
  switch (decision.verdict) {
    case "allow":
    case "deny":
      cache.set(
        key,
        { decision, identityGeneration: await identityGeneration(bruteForce, decision, username) },
        decision.verdict === "allow",
      );
      break;
    case "tempfail": {
      // Never cached; with serveStaleSeconds, a recent enough allow for exactly these credentials stands in.
      const stale = decision.reason === "directory-unavailable" ? cache.getStale(key) : undefined;
      const unflushed =
        stale !== undefined &&
        stale.value.identityGeneration !== null &&
        (await identityGeneration(bruteForce, stale.value.decision, username)) === stale.value.identityGeneration;
      if (stale && unflushed)
        return {
          ...stale.value.decision,
          detail: staleDetail(stale.ageSeconds, cache.policy, decision.detail),
          cache: "stale",
        };
      break;
    }
    case "continue":
      break;
  }
  return { ...decision, cache: "miss" };
}

/**
 * The flush generation of the identity a decision names, when it is not the name as typed (`alice@example.com`
 * found alice): flushing alice must drop it too. 0 without a limiter or an identity; null when unreadable.
 */
async function identityGeneration(
  bruteForce: BruteForceLimiter | null,
  decision: Decision,
  username: string,
): Promise<number | null> {
  if (!bruteForce || decision.identity === null || userKeyOf(decision.identity) === userKeyOf(username)) return 0;
  const [generation] = (await bruteForce.generations([decision.identity])) ?? [];
  return generation ?? null;
}

export function staleDetail(ageSeconds: number, policy: CachePolicy, unavailable: string | undefined): string {
  return `directory unavailable: answered with the allow cached ${ageSeconds} s ago (serveStaleSeconds ${policy.serveStaleSeconds}); ${unavailable ?? ""}`;
}
