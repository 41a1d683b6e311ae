// The benchmark's results as ratios against their baselines (docs/performance.md targets), and as JSON and Markdown in
// bench-results/.
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import type { SprayResult } from "./brute-force.ts";
import type { RunResult } from "./measure.ts";
import { PEER_FIGURES } from "./figures.ts";
import type { InFlightMemory } from "./parts/dovecot.ts";

export type Results = Record<string, Record<number, RunResult>>;

export interface Memory {
  idleConnectionsGreeted: number;
  relayRssIdleBytes: number;
  relayRssWith1000IdleBytes: number;
  relayBytesPerIdleConnection: number;
  relayRssUnderLoadBytes: number;
  apiRssUnderLoadBytes: number;
  /** The API's RSS at rest and at c=32 over the Dovecot-protocol front (parts/dovecot.ts); null without it. */
  inFlight: InFlightMemory | null;
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
  const rate = (name: string, c: number) => results[name]?.[c]?.rate ?? Number.NaN;
  const ratio = (a: string, b: string, c: number) => rate(a, c) / rate(b, c);
  const cpuMs = (name: string, process: string, c: number) => results[name]?.[c]?.cpuMsPerOp[process] ?? Number.NaN;
  return concurrency.map((c) => ({
    concurrency: c,
    uncachedVsRaw: ratio("API auth, uncached", "raw ldapts search+bind (StartTLS)", c),
    directBindVsRaw: ratio("API auth, uncached, direct bind", "raw ldapts search+bind (StartTLS)", c),
    cachedVsPing: ratio("API auth, cached", "API GET /v1/ping (HTTP baseline)", c),
    frontUncachedVsDovecot: ratio(PEER_FIGURES.frontUncached, PEER_FIGURES.dovecotUncached, c),
    frontCachedVsDovecot: ratio(PEER_FIGURES.frontCached, PEER_FIGURES.dovecotCached, c),
    frontUncachedVsHttp: ratio(PEER_FIGURES.frontUncached, "API auth, uncached", c),
    relayVsBare: ratio("relay sessions", "bare smtp-server sessions", c),
    postfixSmtpgateVsDovecot: ratio(PEER_FIGURES.postfixSmtpgate, PEER_FIGURES.postfixDovecot, c),
    relayVsPostfix: ratio(PEER_FIGURES.relayBesidePostfix, PEER_FIGURES.postfixDovecot, c),
    relayCpuVsPostfix:
      cpuMs(PEER_FIGURES.relayBesidePostfix, "relay", c) / cpuMs(PEER_FIGURES.postfixDovecot, "postfix", c),
    nginxVsRelay: ratio("nginx + smtpgate sessions", "relay sessions", c),
    nginxVsPostfix: ratio("nginx + smtpgate sessions", PEER_FIGURES.postfixDovecot, c),
    limiterMemoryVsOff: ratio("API auth, uncached, limiter memory", "API auth, uncached, limiter off", c),
    limiterRedisVsOff: ratio("API auth, uncached, limiter redis", "API auth, uncached, limiter off (redis API)", c),
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
  row("API auth cached / GET /v1/ping", "cachedVsPing", "≥ 0.80");
  row("Dovecot-protocol front uncached / Dovecot uncached", "frontUncachedVsDovecot", "≥ 1.5");
  row("Dovecot-protocol front cached / Dovecot cached", "frontCachedVsDovecot", "≥ 1.0");
  row("Dovecot-protocol front uncached / POST /v1/decide/auth uncached", "frontUncachedVsHttp", "≥ 1.0");
  row("relay session / bare smtp-server session", "relayVsBare", "≥ 0.70 (c=8, 32)");
  row("Postfix + smtpgate session / Postfix + Dovecot session", "postfixSmtpgateVsDovecot", "≥ 1.0");
  row("relay session, greetingDelayMs 0 / Postfix + Dovecot session", "relayVsPostfix", "≥ 1.2");
  row("relay CPU ms per session / Postfix's (smtpd, cleanup, qmgr, smtp, ...)", "relayCpuVsPostfix", "< 1.0");
  row("nginx + smtpgate session / relay session", "nginxVsRelay", "(compared, no target)");
  row("nginx + smtpgate session / Postfix + Dovecot session", "nginxVsPostfix", "(compared, no target)");
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
  );
  const { inFlight } = memory;
  if (inFlight)
    lines.push(
      "",
      `API memory per decision in flight: ${(inFlight.apiBytesPerInFlightDecision / 1024).toFixed(1)} KiB (RSS ${(inFlight.apiRssAtRestBytes / 2 ** 20).toFixed(1)} MiB at rest, peak ${(inFlight.apiRssPeakAtC32Bytes / 2 ** 20).toFixed(1)} MiB with 32 uncached decisions in flight over the Dovecot-protocol front, difference / 32; heap growth included).`,
    );
  lines.push("");
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
  };
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, `${name}.json`), `${JSON.stringify(output, null, 2)}\n`);
  const text = markdown(report, machine, targets);
  await writeFile(join(folder, `${name}.md`), text);
  return text;
}
