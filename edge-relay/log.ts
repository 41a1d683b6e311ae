/**
 * Relay logging: one JSON object a line, every line of a session carrying its id (and the temporary-allowance
 * mark once set), plus the AsyncOS-style text operators grep for (docs/operations.md#the-relays-log):
 *
 *   ICID 12 TLS success protocol TLSv1.3 cipher TLS_AES_256_GCM_SHA384
 *   SMTP Auth: (ICID 12) succeeded for user: alice using AUTH mechanism: PLAIN with profile: corp
 *
 * Passwords and AUTH blobs never reach this module: callers pass only user names, verdicts and reasons.
 */
export type LogRecord = Record<string, unknown>;
export type Logger = (record: LogRecord) => void;

export const jsonLines: Logger = (record) => {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), component: "edge-relay", ...record })}\n`);
};

export interface SessionLog {
  (level: "info" | "warn" | "error", text: string, fields?: LogRecord): void;
  /** From now on every line of the session says the allowance query failed and it was allowed anyway. */
  markTemporary(): void;
}

export function sessionLog(log: Logger, icid: number, session: string, client: string): SessionLog {
  let temporary = false;
  const write = ((level, text, fields = {}) => {
    log({ level, msg: text, icid, session, client, ...(temporary ? { temporaryAllowance: true } : {}), ...fields });
  }) as SessionLog;
  write.markTemporary = () => {
    temporary = true;
  };
  return write;
}
