/**
 * The decision API's metrics, served by GET /metrics. Recorded as they happen: decisions (by kind, verdict,
 * reason, method and profile), their latency, HTTP requests, and each directory host's operations. Read at scrape
 * time: the decision caches' counters, failovers and the active host, the CRLs' age and freshness.
 *
 * One instance per app (tests start several APIs in one process); on Workers that means per isolate.
 * Every label comes from a bounded set: verdicts, reasons, routes and configured names, never a user name or an
 * address.
 */
import type { Config } from "../config/schema.ts";
import type { Gate } from "../gate/gate.ts";
import type { Decision } from "../core/verdict.ts";
import type { HostSelector } from "../ldap/host-selector.ts";
import { Registry, type Counter, type Histogram, type MetricFamily } from "../../lib/prometheus.ts";

/** An LDAP server profile as the metrics see it: its hosts, in configuration order, and the adapter's selector. */
export interface ObservedDirectory {
  hosts: readonly string[];
  mode: "failover" | "loadbalance";
  selector: HostSelector;
}

/** What both runtimes have: the configuration and directory adapters that carry a HostSelector. */
export function observedDirectories(
  config: Config,
  directories: Readonly<Record<string, { selector: HostSelector }>>,
): Record<string, ObservedDirectory> {
  const observed: Record<string, ObservedDirectory> = {};
  for (const [name, directory] of Object.entries(directories)) {
    const configured = config.directories[name];
    if (configured) observed[name] = { hosts: configured.hosts, mode: configured.mode, selector: directory.selector };
  }
  return observed;
}

export interface ApiMetricsOptions {
  gate: Gate;
  directories?: Readonly<Record<string, ObservedDirectory>>;
  now?: () => Date;
}

export type DecisionKind = "auth" | "tls" | "certificate-facts" | "identity";

export class ApiMetrics {
  readonly #registry = new Registry();
  readonly #decisions: Counter<"kind" | "verdict" | "reason" | "method" | "profile">;
  readonly #duration: Histogram<"kind" | "cache">;
  readonly #requests: Counter<"route" | "status">;
  readonly #bruteForceBlocks: Counter<"listener" | "bucket" | "mode">;

  constructor(options: ApiMetricsOptions) {
    const registry = this.#registry;
    const now = options.now ?? (() => new Date());
    this.#decisions = registry.counter(
      "smtpgate_decisions_total",
      "Decisions answered, by kind (auth, tls, certificate-facts, identity), verdict, reason, method and auth profile.",
      ["kind", "verdict", "reason", "method", "profile"],
    );
    this.#duration = registry.histogram(
      "smtpgate_decision_duration_seconds",
      "Time from receiving a decision request to its verdict, by kind and cache outcome (hit, miss, stale; none without a cache).",
      ["kind", "cache"],
    );
    this.#requests = registry.counter(
      "smtpgate_http_requests_total",
      "HTTP requests answered, by route pattern and status code.",
      ["route", "status"],
    );

    this.#bruteForceBlocks = registry.counter(
      "smtpgate_bruteforce_blocked_total",
      "SMTP AUTH attempts the brute-force limiter blocked (mode enforce) or would have blocked (mode observe), by listener and the bucket that was full (address, user, pair).",
      ["listener", "bucket", "mode"],
    );
    const storeFailures = registry.counter(
      "smtpgate_bruteforce_store_failures_total",
      "Brute-force store operations that failed (read before a decision, record after it, generation for the cache); bruteForceStore.onStoreFailure says what the attempt got.",
      ["operation"],
    );
    registry.onCollect(() => {
      for (const [operation, count] of Object.entries(options.gate.bruteForce?.storeFailures ?? {}))
        storeFailures.set({ operation }, count);
    });

    this.#observeDirectories(options.directories ?? {});
    this.#observeCaches(options.gate);
    this.#observeCrls(options.gate, now);
  }

  /** One decision: `seconds` from the request's arrival to the verdict. */
  decision(kind: DecisionKind, decision: Decision, seconds: number): void {
    this.#decisions.inc({
      kind,
      verdict: decision.verdict,
      reason: decision.reason,
      method: decision.method ?? "none",
      profile: decision.profile,
    });
    this.#duration.observe({ kind, cache: decision.cache ?? "none" }, seconds);
  }

  /** An attempt the brute-force limiter blocked, or would have blocked in observe mode. */
  bruteForceBlock(listener: string, bucket: string, mode: "enforce" | "observe"): void {
    this.#bruteForceBlocks.inc({ listener, bucket, mode });
  }

  /** One HTTP answer; `route` is the matched route pattern, never the raw path. */
  request(route: string, status: number): void {
    this.#requests.inc({ route, status: String(status) });
  }

  /** The text exposition (Prometheus format 0.0.4). */
  render(): string {
    return this.#registry.render();
  }

  /** Every metric this app exposes (for the generated reference, docs/metrics.md). */
  families(): MetricFamily[] {
    return this.#registry.families();
  }

  #observeDirectories(directories: Readonly<Record<string, ObservedDirectory>>): void {
    const registry = this.#registry;
    const up = registry.gauge(
      "smtpgate_directory_host_up",
      "Whether the directory host answered its last operation (1) or failed it (0); absent until it was first tried.",
      ["directory", "host"],
    );
    const operations = registry.counter(
      "smtpgate_directory_operations_total",
      "LDAP operations per directory host: ok = the host answered (a refused bind is an answer), failed = connection error, timeout, busy or unavailable.",
      ["directory", "host", "result"],
    );
    const failovers = registry.counter(
      "smtpgate_directory_failovers_total",
      "How often a directory's active host changed (failover mode; including the return to the first host).",
      ["directory"],
    );
    const active = registry.gauge(
      "smtpgate_directory_active_host",
      "1 for the host a failover-mode directory tries first, 0 for the others.",
      ["directory", "host"],
    );

    for (const [name, directory] of Object.entries(directories)) {
      observeHosts(directory, (index, ok) => {
        const host = directory.hosts[index] ?? String(index);
        up.set({ directory: name, host }, ok ? 1 : 0);
        operations.inc({ directory: name, host, result: ok ? "ok" : "failed" });
      });
    }
    registry.onCollect(() => {
      for (const [name, directory] of Object.entries(directories)) {
        failovers.set({ directory: name }, directory.selector.failovers);
        if (directory.mode === "failover")
          directory.hosts.forEach((host, index) =>
            active.set({ directory: name, host }, index === directory.selector.active ? 1 : 0),
          );
      }
    });
  }

  #observeCaches(gate: Gate): void {
    const registry = this.#registry;
    const labels = ["profile", "kind"] as const;
    const hits = registry.counter(
      "smtpgate_cache_hits_total",
      "Decisions answered from an auth profile's decision cache.",
      labels,
    );
    const misses = registry.counter(
      "smtpgate_cache_misses_total",
      "Cache lookups that found no fresh decision (the directory was asked).",
      labels,
    );
    const stale = registry.counter(
      "smtpgate_cache_stale_served_total",
      "Cached allows given past their TTL because the directory was unavailable (serveStaleSeconds).",
      labels,
    );
    const evictions = registry.counter(
      "smtpgate_cache_evictions_total",
      "Least recently used cache entries dropped to stay within maxEntries.",
      labels,
    );
    const entries = registry.gauge("smtpgate_cache_entries", "Decisions held in an auth profile's cache.", labels);
    registry.onCollect(() => {
      for (const [profile, stats] of Object.entries(gate.cacheStats())) {
        if (!stats.enabled) continue;
        const series = { profile, kind: stats.kind };
        hits.set(series, stats.hits);
        misses.set(series, stats.misses);
        stale.set(series, stats.staleServed);
        evictions.set(series, stats.evictions);
        entries.set(series, stats.entries);
      }
    });
  }

  #observeCrls(gate: Gate, now: () => Date): void {
    const registry = this.#registry;
    const loaded = registry.gauge("smtpgate_crl_loaded", "Whether a CRL source holds a CRL (1) or not (0).", [
      "source",
    ]);
    const age = registry.gauge("smtpgate_crl_age_seconds", "Seconds since the held CRL's thisUpdate.", ["source"]);
    const nextUpdate = registry.gauge(
      "smtpgate_crl_next_update_seconds",
      "Seconds until the held CRL's nextUpdate; negative once it is past (stale).",
      ["source"],
    );
    const failures = registry.counter(
      "smtpgate_crl_refresh_failures_total",
      "CRL downloads or reads that failed (the previous CRL is kept).",
      ["source"],
    );
    registry.onCollect(() => {
      const states = gate.crls?.status() ?? [];
      if (states.length === 0) return;
      const at = now().getTime();
      // Sources are fixed by the configuration, but a CRL without nextUpdate must not keep a value from before.
      age.reset();
      nextUpdate.reset();
      for (const state of states) {
        loaded.set({ source: state.name }, state.crl ? 1 : 0);
        failures.set({ source: state.name }, state.refreshFailures);
        if (!state.crl) continue;
        age.set({ source: state.name }, (at - state.crl.thisUpdate.getTime()) / 1000);
        if (state.crl.nextUpdate) nextUpdate.set({ source: state.name }, (state.crl.nextUpdate.getTime() - at) / 1000);
      }
    });
  }
}

/**
 * Calls `report` with each host's result as the directory adapter reports it to its HostSelector. The selector
 * (api/ldap) has no listener of its own, so its two report methods are wrapped on this instance; the selector
 * behaves exactly as before.
 */
function observeHosts(directory: ObservedDirectory, report: (index: number, ok: boolean) => void): void {
  const { selector } = directory;
  const success = selector.reportSuccess.bind(selector);
  const failure = selector.reportFailure.bind(selector);
  selector.reportSuccess = (index: number): void => {
    success(index);
    report(index, true);
  };
  selector.reportFailure = (index: number): void => {
    failure(index);
    report(index, false);
  };
}
