/**
 * JSON-lines logging, the one format of every smtpgate process: one JSON object a line, `time` first, then the
 * logger's fixed fields, then the record. Runtime-neutral; where the line goes is a writer:
 *
 *   const log = createJsonLineLogger(writeToStdout, { component: "edge-relay" });   // Node.js
 *   const log = createJsonLineLogger(writeToConsole);   // Workers: Workers Logs and `wrangler tail` read the console
 *   log({ level: "info", msg: "listening", url });
 *
 * Callers pass user names, verdicts and reasons, never a password, a token or an AUTH blob.
 */

export type LogRecord = Record<string, unknown>;
export type Logger = (record: LogRecord) => void;
/** Where a finished line goes; `level` is the record's, for writers that sort by it. */
export type LineWriter = (line: string, level: unknown) => void;

export function createJsonLineLogger(write: LineWriter, fields: LogRecord = {}): Logger {
  return function logJsonLine(record) {
    write(JSON.stringify({ time: new Date().toISOString(), ...fields, ...record }), record.level);
  };
}

/**
 * Node.js: standard output, one write per event-loop turn. A decision's line used to be a `write()` syscall of
 * its own (a quarter of the API's writes under load); lines logged in one turn now leave together, on the next
 * turn (setImmediate) or at once past FLUSH_BYTES. Nothing is lost on the way out: the buffer is flushed on
 * `exit` (process.exit included, which writes pipes and files synchronously on Linux) and when an exception is
 * about to kill the process (`uncaughtExceptionMonitor`, which leaves the crash as it is).
 */
export const writeToStdout: LineWriter = (line) => {
  if (!flushOnExit) {
    flushOnExit = true;
    process.on("exit", flushStdout);
    process.on("uncaughtExceptionMonitor", flushStdout);
  }
  pending += `${line}\n`;
  if (pending.length >= FLUSH_BYTES) flushStdout();
  else if (!scheduled) {
    scheduled = true;
    setImmediate(flushOnNextTurn);
  }
};

/** Writes what writeToStdout holds now; for a caller about to end the process some other way. */
export function flushStdout(): void {
  if (pending === "") return;
  const text = pending;
  pending = "";
  process.stdout.write(text);
}

// Past this, a burst is written at once rather than held for the turn.
const FLUSH_BYTES = 64 * 1024;
let pending = "";
let scheduled = false;
let flushOnExit = false;

function flushOnNextTurn(): void {
  scheduled = false;
  flushStdout();
}

/** The console, by level. */
export const writeToConsole: LineWriter = (line, level) => {
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
};
