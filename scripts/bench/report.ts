// The benchmark's results as ratios against their baselines (docs/performance.md targets), and as JSON and Markdown in
// bench-results/.
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import type { SprayResult } from "./brute-force.ts";
import type { RunResult } from "./measure.ts";

/** Reference figures (docs/performance.md) measured on this kind of machine (not re-measurable here). */
export const REFERENCE = {
  dovecotUncached: { 1: 2300, 8: 3200, 32: 3600 } as Record<number, number>,
  postfixSessions: { 1: 18, 8: 117, 32: 126 } as Record<number, number>,
};

export type Results = Record<string, Record<number, RunResult>>;

export interface Memory {
  idleConnectionsGreeted: number;
  relayRssIdleBytes: number;
  relayRssWith1000IdleBytes: number;
  relayBytesPerIdleConnection: number;
  relayRssUnderLoadBytes: number;
  apiRssUnderLoadBytes: number;
}

export interface Report {
  results: Results;
  memory: Memory;
  /** The brute-force spray (scripts/bench/brute-force.ts); null when the part did not run. */
  spray: SprayResult | null;
  concurrency: number[];
  runs: number;
  seconds: number;
}

function targetsOf(results: Results, concurrency: number[]) {
  const ratio = (a: string, b: string, c: number) =>
    (results[a]?.[c]?.rate ?? Number.NaN) / (results[b]?.[c]?.rate ?? Number.NaN);
  return concurrency.map((c) => ({
    concurrency: c,
    uncachedVsRaw: ratio("API auth, uncached", "raw ldapts search+bind (StartTLS)", c),
    directBindVsRaw: ratio("API auth, uncached, direct bind", "raw ldapts search+bind (StartTLS)", c),
    uncachedVsDovecotReference:
      (results["API auth, uncached"]?.[c]?.rate ?? Number.NaN) / (REFERENCE.dovecotUncached[c] as number),
    cachedVsPing: ratio("API auth, cached", "API GET /v1/ping (HTTP baseline)", c),
    relayVsBare: ratio("relay sessions", "bare smtp-server sessions", c),
    relayVsPostfixReference:
      (results["relay sessions"]?.[c]?.rate ?? Number.NaN) / (REFERENCE.postfixSessions[c] as number),
    promptRelayVsPostfixReference:
      (results["relay sessions, greetingDelayMs 0"]?.[c]?.rate ?? Number.NaN) /
      (REFERENCE.postfixSessions[c] as number),
    nginxVsRelay: ratio("nginx + smtpgate sessions", "relay sessions", c),
    limiterMemoryVsOff: ratio("API auth, uncached, limiter memory", "API auth, uncached, limiter off", c),
    limiterRedisVsOff: ratio("API auth, uncached, limiter redis", "API auth, uncached, limiter off (redis API)", c),
    nginxVsPostfixReference:
      (results["nginx + smtpgate sessions"]?.[c]?.rate ?? Number.NaN) / (REFERENCE.postfixSessions[c] as number),
  }));
}

type Targets = ReturnType<typeof targetsOf>;

function machineOf(report: Report) {
  return {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    date: new Date().toISOString(),
    runs: report.runs,
    secondsPerRun: report.seconds,
  };
}

type Machine = ReturnType<typeof machineOf>;

function markdown(report: Report, machine: Machine, targets: Targets): string {
  const { results, memory } = report;
  const cpu = (r: RunResult | undefined) =>
    r
      ? Object.entries(r.cpuMsPerOp)
          .map(([name, ms]) => `${name} ${ms.toFixed(2)}`)
          .join(", ")
      : "";
  const lines = [
    `Machine: ${machine.cpus} cores (${machine.model}), ${machine.memoryGiB} GiB, Node ${machine.node}; ${machine.date}; median of ${report.runs} run(s) of ${report.seconds} s; slapd, API, relay and load generator share the machine.`,
    "",
    "| work | c | rate/s | p50 ms | p99 ms | CPU ms per op |",
    "|---|---:|---:|---:|---:|---|",
  ];
  for (const [name, byConcurrency] of Object.entries(results)) {
    for (const [c, r] of Object.entries(byConcurrency))
      lines.push(`| ${name} | ${c} | ${r.rate.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${cpu(r)} |`);
  }
  lines.push("", "| target (docs/performance.md) | c=1 | c=8 | c=32 | goal |", "|---|---:|---:|---:|---|");
  const row = (label: string, key: keyof Targets[number], goal: string) =>
    lines.push(`| ${label} | ${targets.map((t) => (t[key] as number).toFixed(2)).join(" | ")} | ${goal} |`);
  row("API auth uncached / raw ldapts search+bind", "uncachedVsRaw", "≥ 0.85");
  row("API auth uncached, direct bind (bindDnTemplate) / raw ldapts search+bind", "directBindVsRaw", "≥ 1.0");
  row("API auth uncached / Dovecot uncached (reference figures)", "uncachedVsDovecotReference", "≥ 1.5");
  row("API auth cached / GET /v1/ping", "cachedVsPing", "≥ 0.80");
  row("relay session / bare smtp-server session", "relayVsBare", "≥ 0.70 (c=8, 32)");
  row("relay session / Postfix+Dovecot (reference figures)", "relayVsPostfixReference", "> 1");
  row(
    "relay session, greetingDelayMs 0 / Postfix+Dovecot (reference figures)",
    "promptRelayVsPostfixReference",
    "≥ 1.2",
  );
  row("nginx + smtpgate session / relay session", "nginxVsRelay", "(compared, no target)");
  row(
    "nginx + smtpgate session / Postfix+Dovecot (reference figures)",
    "nginxVsPostfixReference",
    "(compared, no target)",
  );
  row("API auth uncached, brute-force limiter memory / off", "limiterMemoryVsOff", "≥ 0.95");
  row("API auth uncached, brute-force limiter Redis / off", "limiterRedisVsOff", "≥ 0.95");
  const { spray } = report;
  if (spray)
    lines.push(
      "",
      `Brute-force spray: ${spray.attempts} wrong passwords from ${spray.addresses} addresses at ${spray.users} users (Redis store), ${spray.attemptsPerSecond.toFixed(0)}/s: ${spray.blocked} blocked, ${spray.passed} reached the directory, slapd completed ${spray.binds} binds; the threshold is ${spray.threshold} (${spray.users} users × the user bucket's 20 per window; goal: binds ≤ threshold).`,
    );
  lines.push(
    "",
    `Relay memory: a fresh relay holds ${(memory.relayRssIdleBytes / 2 ** 20).toFixed(1)} MiB RSS, ${(memory.relayRssWith1000IdleBytes / 2 ** 20).toFixed(1)} MiB with ${memory.idleConnectionsGreeted} idle connections past their greeting (${(memory.relayBytesPerIdleConnection / 1024).toFixed(1)} KiB per connection); the relay that ran the sessions holds ${(memory.relayRssUnderLoadBytes / 2 ** 20).toFixed(1)} MiB; the API ${(memory.apiRssUnderLoadBytes / 2 ** 20).toFixed(1)} MiB after the decision runs.`,
    "",
  );
  return lines.join("\n");
}

/** Writes `<name>.json` and `<name>.md` into `folder` and returns the Markdown. */
export async function writeReport(report: Report, folder: string, name: string): Promise<string> {
  const machine = machineOf(report);
  const targets = targetsOf(report.results, report.concurrency);
  const output = {
    machine,
    results: report.results,
    targets,
    memory: report.memory,
    spray: report.spray,
    reference: REFERENCE,
  };
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, `${name}.json`), `${JSON.stringify(output, null, 2)}\n`);
  const text = markdown(report, machine, targets);
  await writeFile(join(folder, `${name}.md`), text);
  return text;
}
