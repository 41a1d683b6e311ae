// Waiting for something to happen, with a deadline: for the throw-away servers' start-up, for child processes and
// for the tests, instead of sleeping a fixed time and hoping the event came first.
import { setTimeout as delay } from "node:timers/promises";

export interface WaitOptions {
  /** Give up after this long (default 5 s). */
  timeoutMs?: number;
  /** How often to look again (default 25 ms). */
  intervalMs?: number;
  /** What is awaited, for the error message ("slapd listening on 127.0.0.1:1389"). */
  what?: string;
}

const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_INTERVAL_MS = 25;

/**
 * Resolves once `predicate` returns true (it may be async); rejects when `timeoutMs` passes first, or with the
 * predicate's own error if it throws.
 *
 *   await waitFor(() => relay.metrics.sessionsActive.get() === 0, { what: "the session to close" });
 */
export async function waitFor(predicate: () => boolean | Promise<boolean>, options: WaitOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.what ?? "a condition"}`);
    await delay(Math.min(options.intervalMs ?? DEFAULT_INTERVAL_MS, left));
  }
}

/**
 * A fixed pause, only where the time itself is the point: pacing a deliberately slow client, or giving something
 * that must NOT happen the chance to happen. Waiting for an event is waitFor's job.
 */
export function sleep(ms: number): Promise<void> {
  return delay(ms);
}
