/**
 * A small metrics registry and the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/): counters, gauges and histograms with labels.
 * Enough for one service; no client library needed. Runtime-neutral (no Node APIs).
 *
 *   const registry = new Registry();
 *   const requests = registry.counter("smtpgate_http_requests_total", "HTTP requests answered", ["route", "status"]);
 *   requests.inc(["/v1/decide/auth", "200"]);
 *   registry.onCollect(() => entries.set([], cache.size));   // values read at scrape time
 *   response.body = registry.render();                        // Content-Type: CONTENT_TYPE
 *
 * Label values must come from bounded sets (verdicts, reasons, configured names): never user names or addresses.
 * Series are created on first use, so recording is one map lookup on the series' label string.
 */

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Seconds; from a cached decision (well under a millisecond) to a directory that times out (seconds). */
export const DEFAULT_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

type LabelValues = readonly string[];

abstract class Family<S> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  /** By seriesKey; each series keeps its label string (`a="x",b="y"`), which is what the exposition prints. */
  protected readonly series = new Map<string, { labels: string; series: S }>();

  constructor(name: string, help: string, labelNames: readonly string[]) {
    if (!METRIC_NAME.test(name)) throw new Error(`not a metric name: ${name}`);
    for (const label of labelNames)
      if (!LABEL_NAME.test(label) || label.startsWith("__")) throw new Error(`${name}: not a label name: ${label}`);
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  abstract readonly type: "counter" | "gauge" | "histogram";

  protected seriesFor(values: LabelValues, create: () => S): S {
    const key = seriesKey(values);
    let entry = this.series.get(key);
    if (entry === undefined) {
      entry = { labels: this.labelString(values), series: create() };
      this.series.set(key, entry);
    }
    return entry.series;
  }

  protected labelString(values: LabelValues): string {
    if (values.length !== this.labelNames.length)
      throw new Error(`${this.name}: ${this.labelNames.length} label values expected, got ${values.length}`);
    let out = "";
    for (let i = 0; i < values.length; i += 1)
      out += `${i === 0 ? "" : ","}${this.labelNames[i]}="${escapeLabelValue(values[i] as string)}"`;
    return out;
  }

  /** Drops every series (for values mirrored at scrape time whose label sets may shrink). */
  reset(): void {
    this.series.clear();
  }

  render(): string {
    let out = `# HELP ${this.name} ${this.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}\n# TYPE ${this.name} ${this.type}\n`;
    for (const { labels, series } of this.series.values()) out += this.renderSeries(labels, series);
    return out;
  }

  protected abstract renderSeries(labels: string, series: S): string;
}

interface Value {
  value: number;
}

/** A value that only goes up (or, with `set`, mirrors a count kept elsewhere, such as a failover counter). */
export class Counter extends Family<Value> {
  readonly type = "counter";

  inc(values: LabelValues = [], by = 1): void {
    this.seriesFor(values, () => ({ value: 0 })).value += by;
  }

  set(values: LabelValues, value: number): void {
    this.seriesFor(values, () => ({ value: 0 })).value = value;
  }

  protected renderSeries(labels: string, series: Value): string {
    return sample(this.name, labels, series.value);
  }
}

/** A value that goes up and down. */
export class Gauge extends Family<Value> {
  readonly type = "gauge";

  set(values: LabelValues, value: number): void {
    this.seriesFor(values, () => ({ value: 0 })).value = value;
  }

  protected renderSeries(labels: string, series: Value): string {
    return sample(this.name, labels, series.value);
  }
}

interface Buckets {
  /** Per bucket (not cumulative); the last slot is +Inf. */
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Family<Buckets> {
  readonly type = "histogram";
  readonly buckets: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[] = DEFAULT_BUCKETS) {
    super(name, help, labelNames);
    if (labelNames.includes("le")) throw new Error(`${name}: "le" is the histogram's own label`);
    if (
      buckets.length === 0 ||
      buckets.some((bound, i) => !Number.isFinite(bound) || (i > 0 && bound <= (buckets[i - 1] as number)))
    ) {
      throw new Error(`${name}: buckets must be finite and strictly increasing`);
    }
    this.buckets = [...buckets];
  }

  observe(values: LabelValues, value: number): void {
    const series = this.seriesFor(values, () => ({
      counts: new Array<number>(this.buckets.length + 1).fill(0),
      sum: 0,
      count: 0,
    }));
    let index = 0;
    while (index < this.buckets.length && value > (this.buckets[index] as number)) index += 1;
    series.counts[index] = (series.counts[index] as number) + 1;
    series.sum += value;
    series.count += 1;
  }

  protected renderSeries(labels: string, series: Buckets): string {
    const prefix = labels === "" ? "" : `${labels},`;
    let out = "";
    let cumulative = 0;
    for (let i = 0; i <= this.buckets.length; i += 1) {
      cumulative += series.counts[i] as number;
      const le = i < this.buckets.length ? formatNumber(this.buckets[i] as number) : "+Inf";
      out += sample(`${this.name}_bucket`, `${prefix}le="${le}"`, cumulative);
    }
    return out + sample(`${this.name}_sum`, labels, series.sum) + sample(`${this.name}_count`, labels, series.count);
  }
}

export class Registry {
  readonly #families = new Map<string, { render(): string }>();
  readonly #collectors: (() => void)[] = [];

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#add(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#add(new Gauge(name, help, labelNames));
  }

  histogram(name: string, help: string, labelNames: readonly string[] = [], buckets?: readonly number[]): Histogram {
    return this.#add(new Histogram(name, help, labelNames, buckets));
  }

  /** Runs `collect` before each rendering: for values read from elsewhere at scrape time. */
  onCollect(collect: () => void): void {
    this.#collectors.push(collect);
  }

  /** The text exposition of every metric (families without series still print their HELP and TYPE). */
  render(): string {
    for (const collect of this.#collectors) collect();
    let out = "";
    for (const family of this.#families.values()) out += family.render();
    return out;
  }

  #add<F extends { name: string; render(): string }>(family: F): F {
    if (this.#families.has(family.name)) throw new Error(`metric ${family.name} registered twice`);
    this.#families.set(family.name, family);
    return family;
  }
}

/**
 * The map key of a series, on the recording path (cheaper than the escaped label string): the values joined by
 * NUL and a comma, with a NUL inside a value doubled. Reading left to right, a NUL followed by a NUL is part of a
 * value and one followed by a comma ends it, so two different value lists never share a key; for the usual values
 * (no NUL) it is a plain join.
 */
function seriesKey(values: LabelValues): string {
  let key = "";
  for (let i = 0; i < values.length; i += 1) {
    let value = values[i] as string;
    if (value.includes("\0")) value = value.replaceAll("\0", "\0\0");
    key += i === 0 ? value : `\0,${value}`;
  }
  return key;
}

function sample(name: string, labels: string, value: number): string {
  return `${name}${labels === "" ? "" : `{${labels}}`} ${formatNumber(value)}\n`;
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

/** The format's escapes in label values: backslash, double quote and line feed. */
function escapeLabelValue(value: string): string {
  return /[\\"\n]/.test(value) ? value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") : value;
}
