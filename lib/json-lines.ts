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

/** Node.js: standard output (read at call time, so importing this module needs no Node API). */
export const writeToStdout: LineWriter = (line) => {
  process.stdout.write(`${line}\n`);
};

/** The console, by level. */
export const writeToConsole: LineWriter = (line, level) => {
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
};
