// Graceful stop for the Node entry points (API and relay): on SIGINT or SIGTERM, log, close, and exit 0 once
// closed (1 if closing failed), the log lines still held for this turn written first.
import { flushStdout } from "../json-lines.ts";

export function stopOnSignals(close: () => Promise<void>, onStop: (signal: string) => void): void {
  const stop = (signal: string): void => {
    onStop(signal);
    close().then(
      () => exitFlushed(0),
      () => exitFlushed(1),
    );
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

function exitFlushed(code: number): never {
  flushStdout();
  process.exit(code);
}
