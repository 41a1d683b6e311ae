// What every part of the benchmark is handed by index.ts: the run's settings, the shared daemons, and how to
// measure and record a figure.
import type { SlapdInstance } from "../../../dev/slapd/index.ts";
import type { MeasureFigure, RunResult } from "../measure.ts";

export interface PartContext {
  slapd: SlapdInstance;
  concurrency: number[];
  quick: boolean;
  measure: MeasureFigure;
  record: (name: string, concurrency: number, result: RunResult) => void;
  log: (text: string) => void;
  /** The API under test (this checkout's). */
  api: { pid: number; port: number };
  /** The upstream sink every relayed message goes to. */
  sink: { port: number; pid: number | undefined };
  /** A relay child process (config.ts benchRelayConfig) in front of the API and the sink, once it listens. */
  startRelay: (name: string, options: RelayOptions, nodeOptions?: string[]) => Promise<{ port: number; pid: number }>;
  /** One full submission session against 127.0.0.1:port as worker `worker` (smtp-client.ts). */
  session: (port: number) => (worker: number) => Promise<void>;
}

/** What a part may choose of a relay's configuration; the port is picked by startRelay. */
export interface RelayOptions {
  /** Also listen for health checks (on a free port). */
  health?: boolean;
  upstreamMaxConnections?: number;
  socketTimeoutMs?: number;
  greetingDelayMs?: number;
}
