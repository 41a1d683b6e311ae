/**
 * Bearer tokens for API callers (several at once, for rotation). The presented token is compared with every
 * configured token in constant time over their SHA-256 digests, with no early exit, so neither timing nor the
 * token's length tells an attacker how close a guess was.
 *
 * node:crypto (also available on Workers with nodejs_compat) hashes synchronously: Web Crypto's async digest cost
 * about a fifth of the server's CPU on a cheap request.
 */
import { timingSafeEqual } from "node:crypto";
import { sha256 } from "../../lib/sha256.ts";

export interface TokenChecker {
  /** True when `presented` equals one of the configured tokens. */
  check(presented: string): Promise<boolean>;
}

export async function createTokenChecker(tokens: readonly string[]): Promise<TokenChecker> {
  if (tokens.length === 0) throw new Error("at least one API token is required");
  const digests = tokens.map((token) => sha256(token));
  return {
    async check(presented: string): Promise<boolean> {
      const candidate = sha256(presented);
      let matched = false;
      // Every configured token is compared, whatever the earlier ones gave.
      for (const known of digests) matched = timingSafeEqual(known, candidate) || matched;
      return matched;
    },
  };
}

const BEARER = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)$/i;

/** The token of an RFC 6750 `Authorization: Bearer ...` header, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  return BEARER.exec(header)?.[1] ?? null;
}
