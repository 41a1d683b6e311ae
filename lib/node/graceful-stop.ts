// Graceful stop for the Node entry points (API and relay): on SIGINT or SIGTERM, log, close, and exit 0 once
// closed (1 if closing failed).
export function stopOnSignals(close: () => Promise<void>, onStop: (signal: string) => void): void {
  const stop = (signal: string): void => {
    onStop(signal);
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
