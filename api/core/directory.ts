/**
 * The Directory port: what the decision core needs from an LDAP server profile. The Node and Workers adapters
 * implement it over ldapts; unit tests implement it with plain data.
 *
 * Failures are values. `unavailable` means the directory could not answer (every host down, timed out, busy):
 * the core turns it into `tempfail`, never into an accept.
 */

export interface DirectoryEntry {
  dn: string;
  attributes: Readonly<Record<string, readonly (string | Buffer)[]>>;
}

export interface SearchRequest {
  baseDn: string;
  /** An already-escaped RFC 4515 filter. */
  filter: string;
  /** `sub` (the default) searches the whole subtree; `base` reads the base entry alone. */
  scope?: "base" | "sub";
  /**
   * A base read of a DN that does not exist finds no entry (an answer: the direct bind's unknown user) instead of
   * failing; without it a missing base is a failure, as a wrong configured baseDn must be seen.
   */
  missingBaseIsEmpty?: boolean;
  /** Attributes to return; `[]` for none. */
  attributes: readonly string[];
  /** Attributes whose values must come back as bytes (password hashes). */
  binaryAttributes?: readonly string[];
  /** The most entries wanted; more matching entries are not reported beyond this count. */
  sizeLimit: number;
}

export type DirectoryResult<T> = { ok: true; value: T } | { ok: false; error: DirectoryUnavailable };

export interface DirectoryUnavailable {
  kind: "unavailable";
  /** Operator detail: which hosts failed and how. No secrets. */
  detail: string;
}

/** The answer to a user's bind: the directory accepted the password, or it refused it with an LDAP result. */
export type BindOutcome = { bound: true } | { bound: false; resultCode: number; message: string };

export interface Directory {
  /** Searches with the profile's service identity (or anonymously). Referrals are not chased. */
  search(request: SearchRequest): Promise<DirectoryResult<DirectoryEntry[]>>;
  /**
   * A simple bind as `dn` with `password`, on a connection that never serves the service identity afterwards.
   * Implementations must refuse an empty DN or password without sending anything (RFC 4513 §5.1.2).
   */
  bindAsUser(dn: string, password: string): Promise<DirectoryResult<BindOutcome>>;
  /** Whether at least one host answers (for /readyz). */
  probe(): Promise<DirectoryResult<{ host: string }>>;
  close(): Promise<void>;
}
