/**
 * The relay's metrics, served as Prometheus text (exposition format 0.0.4) by GET /metrics on the health port.
 *
 * One registry per relay instance (tests run several relays in one process, and a process-wide registry would
 * mix them). Labels take only values from small fixed sets or from the configuration (mail-flow policy names):
 * never a user, an address or an IP, so the number of series stays bounded whatever clients do.
 *
 *   const metrics = createRelayMetrics();
 *   metrics.messages.inc({ result: "relayed" });
 *   response.end(metrics.registry.render());
 */

/** The Content-Type of the text format, version 0.0.4. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** API call latency buckets, in seconds: a decision is a few ms, the relay's own timeout a few s. */
export const DECISION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

type Labels<L extends string> = Readonly<Record<L, string>>;

interface Metric {
  readonly name: string;
  lines(): string[];
}

abstract class Series<L extends string, V> {
  readonly #series = new Map<string, { labels: Labels<L>; value: V }>();
  readonly name: string;
  readonly labelNames: readonly L[];

  constructor(name: string, labelNames: readonly L[]) {
    this.name = name;
    this.labelNames = labelNames;
  }

  protected abstract initial(): V;

  protected entry(labels: Labels<L>): { labels: Labels<L>; value: V } {
    const key = this.labelNames.map((label) => labels[label]).join("\u0000");
    let entry = this.#series.get(key);
    if (!entry) {
      entry = { labels: { ...labels }, value: this.initial() };
      this.#series.set(key, entry);
    }
    return entry;
  }

  protected entries(): { labels: Labels<L>; value: V }[] {
    return [...this.#series.values()];
  }

  protected labelText(labels: Labels<L>, extra: Record<string, string> = {}): string {
    const pairs = [...this.labelNames.map((label) => [label, labels[label]] as const), ...Object.entries(extra)];
    return pairs.length === 0
      ? ""
      : `{${pairs.map(([label, value]) => `${label}="${escapeLabelValue(value)}"`).join(",")}}`;
  }
}

/** A value that only goes up (reset when the process restarts). */
export class Counter<L extends string = never> extends Series<L, number> implements Metric {
  protected initial(): number {
    return 0;
  }

  inc(
    ...[labels, by = 1]: [L] extends [never] ? [labels?: Labels<L>, by?: number] : [labels: Labels<L>, by?: number]
  ): void {
    if (by < 0) throw new Error(`${this.name}: a counter cannot go down`);
    this.entry((labels ?? {}) as Labels<L>).value += by;
  }

  /** The current value of one series (0 if it was never touched). */
  get(...[labels]: [L] extends [never] ? [labels?: Labels<L>] : [labels: Labels<L>]): number {
    return this.entry((labels ?? {}) as Labels<L>).value;
  }

  lines(): string[] {
    return this.entries().map(({ labels, value }) => `${this.name}${this.labelText(labels)} ${formatValue(value)}`);
  }
}

/** A value that goes up and down. */
export class Gauge<L extends string = never> extends Counter<L> {
  dec(
    ...[labels, by = 1]: [L] extends [never] ? [labels?: Labels<L>, by?: number] : [labels: Labels<L>, by?: number]
  ): void {
    this.entry((labels ?? {}) as Labels<L>).value -= by;
  }
}

interface HistogramValue {
  /** Observations per bucket (not cumulative; the exposition cumulates). */
  buckets: number[];
  sum: number;
  count: number;
}

/** Observations counted into fixed upper bounds, plus their sum and count. */
export class Histogram<L extends string = never> extends Series<L, HistogramValue> implements Metric {
  readonly bounds: readonly number[];

  constructor(name: string, labelNames: readonly L[], bounds: readonly number[]) {
    super(name, labelNames);
    this.bounds = [...bounds].sort((a, b) => a - b);
  }

  protected initial(): HistogramValue {
    return { buckets: this.bounds.map(() => 0), sum: 0, count: 0 };
  }

  observe(labels: Labels<L>, value: number): void {
    const entry = this.entry(labels).value;
    const index = this.bounds.findIndex((bound) => value <= bound);
    if (index >= 0) entry.buckets[index] = (entry.buckets[index] ?? 0) + 1;
    entry.sum += value;
    entry.count += 1;
  }

  /** Touches a series so that it is exposed (all zero) before its first observation. */
  touch(labels: Labels<L>): void {
    this.entry(labels);
  }

  lines(): string[] {
    return this.entries().flatMap(({ labels, value }) => {
      let cumulative = 0;
      const buckets = this.bounds.map((bound, index) => {
        cumulative += value.buckets[index] ?? 0;
        return `${this.name}_bucket${this.labelText(labels, { le: formatValue(bound) })} ${cumulative}`;
      });
      return [
        ...buckets,
        `${this.name}_bucket${this.labelText(labels, { le: "+Inf" })} ${value.count}`,
        `${this.name}_sum${this.labelText(labels)} ${formatValue(value.sum)}`,
        `${this.name}_count${this.labelText(labels)} ${value.count}`,
      ];
    });
  }
}

/** The metrics of one relay, rendered together. */
export class MetricsRegistry {
  readonly #metrics: { metric: Metric; help: string; type: "counter" | "gauge" | "histogram" }[] = [];

  counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return this.#add(new Counter<L>(name, labelNames), help, "counter");
  }

  gauge<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return this.#add(new Gauge<L>(name, labelNames), help, "gauge");
  }

  histogram<L extends string = never>(
    name: string,
    help: string,
    labelNames: readonly L[],
    bounds: readonly number[],
  ): Histogram<L> {
    return this.#add(new Histogram<L>(name, labelNames, bounds), help, "histogram");
  }

  /** The text exposition: `# HELP`, `# TYPE`, then one `name{labels} value` line per series. */
  render(): string {
    return (
      this.#metrics
        .map(({ metric, help, type }) =>
          [`# HELP ${metric.name} ${escapeHelp(help)}`, `# TYPE ${metric.name} ${type}`, ...metric.lines()].join("\n"),
        )
        .join("\n") + "\n"
    );
  }

  #add<M extends Metric & { labelNames: readonly string[] }>(
    metric: M,
    help: string,
    type: "counter" | "gauge" | "histogram",
  ): M {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(metric.name)) throw new Error(`not a metric name: ${metric.name}`);
    if (this.#metrics.some((known) => known.metric.name === metric.name))
      throw new Error(`metric registered twice: ${metric.name}`);
    for (const label of metric.labelNames)
      if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(label) || label.startsWith("__"))
        throw new Error(`not a label name: ${label}`);
    this.#metrics.push({ metric, help, type });
    return metric;
  }
}

export type SessionResult = "accepted" | "rejected" | "tcprefuse" | "too-many-connections" | "shutting-down";
export type AuthResult = "success" | "failure" | "tempfail";
export type MessageResult = "relayed" | "refused" | "tempfail" | "too-big";
export type DsnResult = "sent" | "failed" | "refused" | "suppressed";
export type ApiCall = "tls" | "auth" | "policy";

/** The relay's metrics (README lists them with their meaning). */
export function createRelayMetrics() {
  const registry = new MetricsRegistry();
  const metrics = {
    registry,
    sessions: registry.counter<"policy" | "result">(
      "smtpgate_relay_sessions_total",
      "SMTP connections by the mail-flow policy of their sender group (none: no group matched) and what the relay did at connect",
      ["policy", "result"],
    ),
    sessionsActive: registry.gauge(
      "smtpgate_relay_sessions_active",
      "SMTP sessions open now (accepted at connect, not yet closed)",
    ),
    tls: registry.counter<"result" | "protocol">(
      "smtpgate_relay_tls_total",
      "TLS handshakes with clients (STARTTLS and implicit TLS) by result and protocol version",
      ["result", "protocol"],
    ),
    auth: registry.counter<"method" | "result">(
      "smtpgate_relay_auth_total",
      "Authentication decisions: client certificates at TLS time and SMTP AUTH passwords, by result (tempfail: API or directory unavailable)",
      ["method", "result"],
    ),
    messages: registry.counter<"result">(
      "smtpgate_relay_messages_total",
      "Messages at the end of DATA by outcome: relayed (the upstream accepted), refused (5xx), tempfail (4xx), too-big",
      ["result"],
    ),
    messageBytes: registry.counter(
      "smtpgate_relay_message_bytes_total",
      "Bytes of message data relayed to the upstream (as received from clients, without the added Received: header)",
    ),
    dsn: registry.counter<"result">(
      "smtpgate_relay_dsn_total",
      "Delivery status notifications for recipients the upstream refused while accepting others: sent, failed (client told 451), refused (client told 5xx), suppressed (null sender)",
      ["result"],
    ),
    apiErrors: registry.counter<"call">(
      "smtpgate_relay_api_errors_total",
      "Decision API calls that failed (unreachable, timeout, HTTP error, malformed answer) by call",
      ["call"],
    ),
    upstreamErrors: registry.counter(
      "smtpgate_relay_upstream_errors_total",
      "Upstream transactions that failed without a reply from the upstream (connect, TLS, timeout, connection lost) or with 421",
    ),
    policyRefreshFailures: registry.counter(
      "smtpgate_relay_policy_refresh_failures_total",
      "Failed refreshes of the listener policy (the last good copy stays in force)",
    ),
    deadlineCloses: registry.counter<"deadline">(
      "smtpgate_relay_deadline_closes_total",
      "Sessions closed with 421 4.4.2 for passing a slow-client deadline: command (line), data, session",
      ["deadline"],
    ),
    decisionSeconds: registry.histogram<"call">(
      "smtpgate_relay_decision_seconds",
      "Latency of decision API calls in seconds, failures included",
      ["call"],
      DECISION_BUCKETS,
    ),
  };
  // Series with a fixed label set are exposed from the start, so that rate() sees their first increment.
  for (const method of ["certificate", "password"])
    for (const result of ["success", "failure", "tempfail"]) metrics.auth.inc({ method, result }, 0);
  for (const result of ["relayed", "refused", "tempfail", "too-big"]) metrics.messages.inc({ result }, 0);
  for (const result of ["sent", "failed", "refused", "suppressed"]) metrics.dsn.inc({ result }, 0);
  for (const call of ["tls", "auth", "policy"]) metrics.apiErrors.inc({ call }, 0);
  for (const call of ["tls", "auth"]) metrics.decisionSeconds.touch({ call });
  for (const deadline of ["command", "data", "session"]) metrics.deadlineCloses.inc({ deadline }, 0);
  metrics.messageBytes.inc(undefined, 0);
  metrics.upstreamErrors.inc(undefined, 0);
  metrics.policyRefreshFailures.inc(undefined, 0);
  metrics.sessionsActive.inc(undefined, 0);
  return metrics;
}

export type RelayMetrics = ReturnType<typeof createRelayMetrics>;

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}
