/**
 * A small metrics registry and the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/): counters, gauges and histograms with labels.
 * Enough for one service; no client library needed. Runtime-neutral (no Node APIs): the API (Node and Workers)
 * and the relay both use it.
 *
 *   const registry = new Registry();
 *   const requests = registry.counter<"route" | "status">("smtpgate_http_requests_total", "HTTP requests answered",
 *     ["route", "status"]);
 *   requests.inc({ route: "/v1/decide/auth", status: "200" });
 *   registry.onCollect(() => entries.set({}, cache.size));   // values read at scrape time
 *   response.body = registry.render();                        // Content-Type: CONTENT_TYPE
 *
 * Label values must come from bounded sets (verdicts, reasons, configured names): never user names or addresses.
 * Series are created on first use, so recording is one map lookup on the series' key.
 */

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Seconds; from a cached decision (well under a millisecond) to a directory that times out (seconds). */
export const DEFAULT_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** One series' label values, by label name. */
export type Labels<L extends string> = Readonly<Record<L, string>>;
/** A metric without labels may be recorded with no labels argument at all. */
type LabelsArg<L extends string> = [L] extends [never] ? [labels?: Labels<L>] : [labels: Labels<L>];
type LabelsAndAmount<L extends string> = [L] extends [never]
  ? [labels?: Labels<L>, by?: number]
  : [labels: Labels<L>, by?: number];

abstract class Family<L extends string, S> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  /** By seriesKey; each series keeps its label string (`a="x",b="y"`), which is what the exposition prints. */
  readonly #series = new Map<string, { labels: string; series: S }>();

  constructor(name: string, help: string, labelNames: readonly L[]) {
    if (!METRIC_NAME.test(name)) throw new Error(`not a metric name: ${name}`);
    for (const label of labelNames)
      if (!LABEL_NAME.test(label) || label.startsWith("__")) throw new Error(`${name}: not a label name: ${label}`);
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  abstract readonly type: "counter" | "gauge" | "histogram";

  protected seriesFor(labels: Labels<L> | undefined, create: () => S): S {
    const key = this.#seriesKey(labels);
    let entry = this.#series.get(key);
    if (entry === undefined) {
      entry = { labels: this.#labelString(labels), series: create() };
      this.#series.set(key, entry);
    }
    return entry.series;
  }

  /** Drops every series (for values mirrored at scrape time whose label sets may shrink). */
  reset(): void {
    this.#series.clear();
  }

  render(): string {
    let out = `# HELP ${this.name} ${this.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}\n# TYPE ${this.name} ${this.type}\n`;
    for (const { labels, series } of this.#series.values()) out += this.renderSeries(labels, series);
    return out;
  }

  protected abstract renderSeries(labels: string, series: S): string;

  /**
   * The map key of a series, on the recording path (cheaper than the escaped label string): the values joined by
   * NUL and a comma, with a NUL inside a value doubled. Reading left to right, a NUL followed by a NUL is part of
   * a value and one followed by a comma ends it, so two different value lists never share a key; for the usual
   * values (no NUL) it is a plain join.
   */
  #seriesKey(labels: Labels<L> | undefined): string {
    let key = "";
    for (let i = 0; i < this.labelNames.length; i += 1) {
      let value = this.#value(labels, i);
      if (value.includes("\0")) value = value.replaceAll("\0", "\0\0");
      key += i === 0 ? value : `\0,${value}`;
    }
    return key;
  }

  #labelString(labels: Labels<L> | undefined): string {
    let out = "";
    for (let i = 0; i < this.labelNames.length; i += 1)
      out += `${i === 0 ? "" : ","}${this.labelNames[i]}="${escapeLabelValue(this.#value(labels, i))}"`;
    return out;
  }

  #value(labels: Labels<L> | undefined, index: number): string {
    const value = labels?.[this.labelNames[index] as L];
    if (typeof value !== "string") throw new Error(`${this.name}: no value for label ${this.labelNames[index]}`);
    return value;
  }
}

interface Value {
  value: number;
}

const zero = (): Value => ({ value: 0 });

/** A family of plain numbers: counters and gauges. */
abstract class Scalar<L extends string> extends Family<L, Value> {
  set(labels: Labels<L>, value: number): void {
    this.seriesFor(labels, zero).value = value;
  }

  /** The current value of one series (0 if it was never touched). */
  get(...[labels]: LabelsArg<L>): number {
    return this.seriesFor(labels, zero).value;
  }

  protected add(labels: Labels<L> | undefined, by: number): void {
    this.seriesFor(labels, zero).value += by;
  }

  protected renderSeries(labels: string, series: Value): string {
    return sample(this.name, labels, series.value);
  }
}

/** A value that only goes up (or, with `set`, mirrors a count kept elsewhere, such as a failover counter). */
export class Counter<L extends string = never> extends Scalar<L> {
  readonly type = "counter";

  inc(...[labels, by = 1]: LabelsAndAmount<L>): void {
    if (by < 0) throw new Error(`${this.name}: a counter cannot go down`);
    this.add(labels, by);
  }
}

/** A value that goes up and down. */
export class Gauge<L extends string = never> extends Scalar<L> {
  readonly type = "gauge";

  inc(...[labels, by = 1]: LabelsAndAmount<L>): void {
    this.add(labels, by);
  }

  dec(...[labels, by = 1]: LabelsAndAmount<L>): void {
    this.add(labels, -by);
  }
}

interface Buckets {
  /** Per bucket (not cumulative); the last slot is +Inf. */
  counts: number[];
  sum: number;
  count: number;
}

/** Observations counted into fixed upper bounds (a value equal to a bound counts in it), plus sum and count. */
export class Histogram<L extends string = never> extends Family<L, Buckets> {
  readonly type = "histogram";
  readonly buckets: readonly number[];

  constructor(name: string, help: string, labelNames: readonly L[], buckets: readonly number[] = DEFAULT_BUCKETS) {
    super(name, help, labelNames);
    if ((labelNames as readonly string[]).includes("le")) throw new Error(`${name}: "le" is the histogram's own label`);
    if (
      buckets.length === 0 ||
      buckets.some((bound, i) => !Number.isFinite(bound) || (i > 0 && bound <= (buckets[i - 1] as number)))
    ) {
      throw new Error(`${name}: buckets must be finite and strictly increasing`);
    }
    this.buckets = [...buckets];
  }

  observe(labels: Labels<L>, value: number): void {
    const series = this.seriesFor(labels, () => this.#empty());
    let index = 0;
    while (index < this.buckets.length && value > (this.buckets[index] as number)) index += 1;
    series.counts[index] = (series.counts[index] as number) + 1;
    series.sum += value;
    series.count += 1;
  }

  /** Creates a series so that it is exposed (all zero) before its first observation. */
  touch(labels: Labels<L>): void {
    this.seriesFor(labels, () => this.#empty());
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

  #empty(): Buckets {
    return { counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
  }
}

/** The metrics of one app or relay instance, rendered together (tests run several in one process). */
/** What a registry says of one of its metrics (for generated documentation). */
export interface MetricFamily {
  name: string;
  type: "counter" | "gauge" | "histogram";
  help: string;
  labelNames: readonly string[];
}

export class Registry {
  readonly #families = new Map<string, MetricFamily & { render(): string }>();
  readonly #collectors: (() => void)[] = [];

  counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return this.#add(new Counter<L>(name, help, labelNames));
  }

  gauge<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return this.#add(new Gauge<L>(name, help, labelNames));
  }

  histogram<L extends string = never>(
    name: string,
    help: string,
    labelNames: readonly L[] = [],
    buckets?: readonly number[],
  ): Histogram<L> {
    return this.#add(new Histogram<L>(name, help, labelNames, buckets));
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

  /** Every registered metric, in registration order. */
  families(): MetricFamily[] {
    return [...this.#families.values()].map(({ name, type, help, labelNames }) => ({ name, type, help, labelNames }));
  }

  #add<F extends MetricFamily & { render(): string }>(family: F): F {
    if (this.#families.has(family.name)) throw new Error(`metric ${family.name} registered twice`);
    this.#families.set(family.name, family);
    return family;
  }
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
