/**
 * What went wrong between smtpgate and a directory host, and the configuration key that fixes it. The fixes are
 * the start-up probe's (api/ldap/failure-fixes.ts); the CLI adds whether the host was reachable at all (exit 3
 * rather than 1) and, for `check --connect`'s base searches, the base DN key to change.
 */
import { ResultCodeError } from "ldapts";
import type { DirectoryConfig } from "../api/config/schema.ts";
import { parseLdapUrl } from "../api/ldap/connection.ts";
import { DeadlineExceeded } from "../lib/deadline.ts";
import { fixFor } from "../api/ldap/failure-fixes.ts";
import { describe } from "../api/ldap/operations.ts";

export interface Diagnosis {
  /** The host could not be reached at all (what the API turns into a tempfail until it comes back). */
  unreachable: boolean;
  /** What happened, one line. */
  what: string;
  /** What to change, naming the configuration key. */
  fix: string;
}

export interface DiagnosisContext {
  directory: string;
  config: DirectoryConfig;
  host: string;
  /** The base DN searched and the key that set it, when the failure was a search's. */
  search?: { baseDn: string; key: string };
}

const UNREACHABLE = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT"]);

export function diagnose(error: unknown, context: DiagnosisContext): Diagnosis {
  const what = describe(error);
  const code = (error as { code?: unknown } | null)?.code;
  const unreachable =
    (typeof code === "string" && UNREACHABLE.has(code)) ||
    error instanceof DeadlineExceeded ||
    /timed? ?out/i.test(what);
  // A search that failed on a connection that was open and bound: the base DN is wrong, not the host.
  if (context.search && error instanceof ResultCodeError) {
    const { baseDn, key } = context.search;
    if (error.code === 32) return { unreachable, what, fix: `${key}: ${baseDn} does not exist on this server` };
    if (error.code === 50)
      return {
        unreachable,
        what,
        fix: `the service identity may not read ${baseDn}: grant ${context.config.bind?.dn ?? "anonymous"} read access, or fix directories.${context.directory}.bind.dn`,
      };
  }
  const fix = fixFor(error, {
    directory: context.directory,
    config: context.config,
    index: Math.max(0, context.config.hosts.indexOf(context.host)),
    endpoint: parseLdapUrl(context.host),
  });
  return { unreachable, what, fix };
}
