/**
 * Bearer tokens for API callers (several at once, for rotation). The presented token is compared with every
 * configured token in constant time over their SHA-256 digests, with no early exit, so neither timing nor the
 * token's length tells an attacker how close a guess was. Web Crypto only: the same code runs on Workers.
 */
const encoder = new TextEncoder();

async function digest(value: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(value)));
}

export interface TokenChecker {
  /** True when `presented` equals one of the configured tokens. */
  check(presented: string): Promise<boolean>;
}

export async function createTokenChecker(tokens: readonly string[]): Promise<TokenChecker> {
  if (tokens.length === 0) throw new Error("at least one API token is required");
  const digests = await Promise.all(tokens.map(digest));
  return {
    async check(presented: string): Promise<boolean> {
      const candidate = await digest(presented);
      let matched = 0;
      for (const known of digests) {
        let difference = 0;
        for (let i = 0; i < known.length; i += 1) difference |= (known[i] as number) ^ (candidate[i] as number);
        matched |= difference === 0 ? 1 : 0;
      }
      return matched === 1;
    },
  };
}

const BEARER = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)$/i;

/** The token of an RFC 6750 `Authorization: Bearer ...` header, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  return BEARER.exec(header)?.[1] ?? null;
}
