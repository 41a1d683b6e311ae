// Closed-loop load generation and the numbers a benchmark row needs: rate, latency percentiles, CPU per
// operation of each process involved (from /proc, so child processes are measured apart from the load generator).
import { readdirSync, readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100; // Linux USER_HZ

/** CPU seconds (user + system) a process has used so far; null if it is gone. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may contain spaces) start at ") ".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/**
 * CPU seconds a daemon and every process under it have used so far, the exited ones included: each live process
 * of the tree counts its own time and that of the children it has reaped (Postfix's master reaps every smtpd,
 * cleanup and smtp process that ends). Null if the daemon is gone.
 */
export function treeCpuSeconds(rootPid: number): number | null {
  const children = new Map<number, number[]>();
  const ticks = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // gone since readdir
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const pid = Number(entry);
    const parent = Number(fields[1]);
    ticks.set(pid, Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]));
    children.set(parent, [...(children.get(parent) ?? []), pid]);
  }
  if (!ticks.has(rootPid)) return null;
  let total = 0;
  const queue = [rootPid];
  for (let pid = queue.pop(); pid !== undefined; pid = queue.pop()) {
    total += ticks.get(pid) ?? 0;
    queue.push(...(children.get(pid) ?? []));
  }
  return total / TICKS_PER_SECOND;
}

/** Resident set size of a process, in bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return Number(kb ?? 0) * 1024;
}

/** The highest RSS of `pid` while `during` runs (sampled every 20 ms), and what `during` returned. */
export async function peakRssDuring<T>(
  pid: number,
  during: () => Promise<T>,
): Promise<{ result: T; peakBytes: number }> {
  let peakBytes = rssBytes(pid);
  const sampler = setInterval(() => (peakBytes = Math.max(peakBytes, rssBytes(pid))), 20);
  try {
    return { result: await during(), peakBytes };
  } finally {
    clearInterval(sampler);
  }
}

/** The processes whose CPU a figure reports: a PID, or a function giving CPU seconds (a daemon's tree). */
export interface Processes {
  [name: string]: number | (() => number | null) | undefined;
}

const cpuOf = (entry: Processes[string]): number | null =>
  entry === undefined ? null : typeof entry === "number" ? cpuSeconds(entry) : entry();

/** A figure's process entry for a daemon and everything under it (treeCpuSeconds). */
export const processTree =
  (pid: number | undefined): (() => number | null) =>
  () =>
    pid === undefined ? null : treeCpuSeconds(pid);

export interface RunResult {
  ops: number;
  errors: number;
  seconds: number;
  rate: number;
  p50: number;
  p99: number;
  /** Milliseconds of CPU per operation, by process name (including "loadgen"). */
  cpuMsPerOp: Record<string, number>;
}

/**
 * Runs `operation` in `concurrency` closed loops for `seconds`. Each loop gets its worker index, so a worker can
 * own its connection. An operation that throws counts as an error (and is not timed).
 */
export async function closedLoop(
  concurrency: number,
  seconds: number,
  operation: (worker: number) => Promise<void>,
  processes: Processes,
): Promise<RunResult> {
  const latencies: number[] = [];
  let errors = 0;
  const cpuBefore = Object.fromEntries(Object.entries(processes).map(([name, pid]) => [name, cpuOf(pid)]));
  const loadgenBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (performance.now() < deadline) {
        const t = performance.now();
        try {
          await operation(worker);
          latencies.push(performance.now() - t);
        } catch {
          errors += 1;
          if (errors > 1000) throw new Error("too many errors; aborting the run");
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const loadgen = process.cpuUsage(loadgenBefore);
  const ops = latencies.length;
  const cpuMsPerOp: Record<string, number> = { loadgen: ops ? (loadgen.user + loadgen.system) / 1000 / ops : 0 };
  for (const [name, pid] of Object.entries(processes)) {
    const before = cpuBefore[name];
    const after = cpuOf(pid);
    if (before !== null && before !== undefined && after !== null)
      cpuMsPerOp[name] = ops ? ((after - before) * 1000) / ops : 0;
  }
  latencies.sort((a, b) => a - b);
  return {
    ops,
    errors,
    seconds: elapsed,
    rate: ops / elapsed,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    cpuMsPerOp,
  };
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] as number;
}

/** The run whose rate is the median of `runs` (its latencies and CPU come with it). */
export function medianRun(runs: RunResult[]): RunResult {
  const sorted = [...runs].sort((a, b) => a.rate - b.rate);
  return sorted[Math.floor(sorted.length / 2)] as RunResult;
}

/** A figure measured with the run's settings (index.ts binds `figure` to them): what the parts are given. */
export type MeasureFigure = (
  label: string,
  concurrency: number,
  operation: (worker: number) => Promise<void>,
  pids: Processes,
) => Promise<RunResult>;

export interface FigureOptions {
  /** Recorded runs; the figure is their median (by rate). */
  runs: number;
  seconds: number;
  /** Of the unrecorded warm-up run before them. */
  warmUpSeconds: number;
}

/**
 * One row of the benchmark: a short unrecorded run first, so JIT warm-up and connection set-up do not land in the
 * figure, then `runs` closed-loop runs; prints and returns the median.
 */
export async function figure(
  label: string,
  concurrency: number,
  operation: (worker: number) => Promise<void>,
  processes: Processes,
  options: FigureOptions,
): Promise<RunResult> {
  await closedLoop(concurrency, options.warmUpSeconds, operation, processes);
  const runs: RunResult[] = [];
  for (let run = 0; run < options.runs; run += 1)
    runs.push(await closedLoop(concurrency, options.seconds, operation, processes));
  const median = medianRun(runs);
  process.stderr.write(
    `  ${label.padEnd(34)} c=${String(concurrency).padStart(2)}  ${median.rate.toFixed(0).padStart(6)}/s  p50 ${median.p50.toFixed(2)} ms  p99 ${median.p99.toFixed(2)} ms  CPU ms/op ${Object.entries(
      median.cpuMsPerOp,
    )
      .map(([name, ms]) => `${name} ${ms.toFixed(3)}`)
      .join(", ")}${median.errors ? `  errors ${median.errors}` : ""}\n`,
  );
  return median;
}
