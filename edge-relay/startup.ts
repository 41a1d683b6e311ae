/**
 * The relay's start: it cannot decide anything without its listener's policy, so it does not listen until it has
 * one. While the API cannot answer (not listening yet at boot, a 5xx, a timeout) the load is retried with capped
 * exponential backoff, each retry logged at warn with the reason: `systemctl enable --now smtpgate-api
 * smtpgate-relay` starts both at once. What waiting cannot fix is a configuration error (PolicyConfigurationError;
 * the command exits 2 for it, which the systemd unit does not restart): a token the API refuses (401/403), a
 * listener or API path it does not know (404), a policy the relay cannot enforce. An abort (SIGTERM while
 * waiting) ends the wait at once.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { ApiError } from "../contract/api-client.ts";
import { UnusablePolicyError, type ListenerPolicyHolder } from "../contract/listener-policy-holder.ts";
import type { Logger } from "./log.ts";

export interface StartupBackoff {
  /** The wait after the first failure; each further one doubles it. */
  readonly firstDelayMs: number;
  /** The longest wait between two attempts. */
  readonly maxDelayMs: number;
}

export const DEFAULT_STARTUP_BACKOFF: StartupBackoff = { firstDelayMs: 500, maxDelayMs: 30_000 };

/** The wait before attempt `failures + 1`: 500 ms, 1 s, 2 s ... up to the cap. */
export function backoffDelay(failures: number, backoff: StartupBackoff): number {
  return Math.min(backoff.maxDelayMs, backoff.firstDelayMs * 2 ** Math.max(0, failures - 1));
}

/** API statuses that say "not now" rather than "not like this". */
const TRANSIENT_STATUSES = new Set([408, 425, 429]);

/** A failed policy load that waiting cannot cure; its message names the listener, the API and the fix. */
export class PolicyConfigurationError extends Error {
  override name = "PolicyConfigurationError";
}

/**
 * What the operator must fix for a failed load, or null for a failure that waiting may cure (unreachable,
 * timeout, 5xx, 429, an answer that is not JSON, e.g. a proxy's error page).
 */
export function configurationFix(error: unknown): string | null {
  if (error instanceof UnusablePolicyError) return "fix the listener in the API's configuration";
  if (!(error instanceof ApiError) || error.status === null) return null;
  const status = error.status;
  if (status === 401 || status === 403) return "set api.token to a token the API's configuration accepts";
  if (status === 404) return "set listener to one of the API's listeners, or fix api.url";
  if (status >= 500 || TRANSIENT_STATUSES.has(status)) return null;
  return "check api.url: the API did not serve a listener policy";
}

/**
 * Loads the policy, waiting as long as it takes for an API that cannot answer yet. Rejects with a
 * PolicyConfigurationError for a configuration error, and with the signal's reason once aborted.
 */
export async function loadPolicyWhenAvailable(
  policy: ListenerPolicyHolder,
  where: { listener: string; apiUrl: string },
  log: Logger,
  options: { signal?: AbortSignal | undefined; backoff?: StartupBackoff | undefined } = {},
): Promise<void> {
  const backoff = options.backoff ?? DEFAULT_STARTUP_BACKOFF;
  for (let failures = 1; ; failures++) {
    options.signal?.throwIfAborted();
    try {
      await policy.load();
      if (failures > 1) log({ level: "info", msg: "listener policy loaded", ...where, attempts: failures });
      return;
    } catch (error) {
      const fix = configurationFix(error);
      if (fix !== null)
        throw new PolicyConfigurationError(
          `cannot load the policy of listener "${where.listener}" from ${where.apiUrl}: ${(error as Error).message}; ${fix}`,
          { cause: error },
        );
      const retryInMs = backoffDelay(failures, backoff);
      log({
        level: "warn",
        msg: "cannot load the listener policy yet; not listening until it loads",
        ...where,
        attempt: failures,
        retryInMs,
        error: (error as Error).message,
      });
      await sleep(retryInMs, undefined, options.signal ? { signal: options.signal } : {});
    }
  }
}
