import { describe, expect, it } from "vitest";
import { Registry } from "./prometheus.ts";

describe("Prometheus text exposition", () => {
  it("prints HELP, TYPE and one line per series, labels in declaration order", () => {
    const registry = new Registry();
    const requests = registry.counter("smtpgate_test_requests_total", "Requests.", ["route", "status"]);
    requests.inc({ route: "/v1/decide/auth", status: "200" });
    requests.inc({ status: "200", route: "/v1/decide/auth" }, 2);
    requests.inc({ route: "/metrics", status: "401" });
    registry.gauge("smtpgate_test_up", "Up.").set({}, 1);
    expect(registry.render()).toBe(
      [
        "# HELP smtpgate_test_requests_total Requests.",
        "# TYPE smtpgate_test_requests_total counter",
        'smtpgate_test_requests_total{route="/v1/decide/auth",status="200"} 3',
        'smtpgate_test_requests_total{route="/metrics",status="401"} 1',
        "# HELP smtpgate_test_up Up.",
        "# TYPE smtpgate_test_up gauge",
        "smtpgate_test_up 1",
        "",
      ].join("\n"),
    );
  });

  it("prints cumulative histogram buckets with +Inf, _sum and _count", () => {
    const registry = new Registry();
    const duration = registry.histogram("smtpgate_test_seconds", "Duration.", ["kind"], [0.25, 0.5, 1]);
    // A value equal to a bound counts in that bucket (le = "less or equal").
    for (const value of [0.125, 0.25, 0.375, 0.75, 6.5]) duration.observe({ kind: "auth" }, value);
    expect(registry.render().split("\n")).toEqual([
      "# HELP smtpgate_test_seconds Duration.",
      "# TYPE smtpgate_test_seconds histogram",
      'smtpgate_test_seconds_bucket{kind="auth",le="0.25"} 2',
      'smtpgate_test_seconds_bucket{kind="auth",le="0.5"} 3',
      'smtpgate_test_seconds_bucket{kind="auth",le="1"} 4',
      'smtpgate_test_seconds_bucket{kind="auth",le="+Inf"} 5',
      'smtpgate_test_seconds_sum{kind="auth"} 8',
      'smtpgate_test_seconds_count{kind="auth"} 5',
      "",
    ]);
  });

  it("escapes label values and help text as the format wants", () => {
    const registry = new Registry();
    registry.gauge("smtpgate_test_info", "A help\nwith a \\ backslash.", ["value"]).set({ value: 'say "hi"\\\n' }, 1);
    expect(registry.render()).toContain("# HELP smtpgate_test_info A help\\nwith a \\\\ backslash.\n");
    expect(registry.render()).toContain('smtpgate_test_info{value="say \\"hi\\"\\\\\\n"} 1\n');
  });

  it("prints special values and keeps series with different label values apart", () => {
    const registry = new Registry();
    const gauge = registry.gauge("smtpgate_test_value", "Value.", ["a", "b"]);
    gauge.set({ a: "x,y", b: "" }, Number.POSITIVE_INFINITY);
    gauge.set({ a: "x", b: "y" }, Number.NaN);
    gauge.set({ a: "x", b: ",y" }, -0.5);
    const lines = registry.render().split("\n");
    expect(lines).toContain('smtpgate_test_value{a="x,y",b=""} +Inf');
    expect(lines).toContain('smtpgate_test_value{a="x",b="y"} NaN');
    expect(lines).toContain('smtpgate_test_value{a="x",b=",y"} -0.5');
  });

  it("never merges two series whose values differ only in where a NUL or a comma sits", () => {
    const registry = new Registry();
    const gauge = registry.gauge("smtpgate_test_nul", "NUL.", ["a", "b"]);
    const lists = [
      ["a\0", "b"],
      ["a", "\0b"],
      ["a\0,", "b"],
      ["a", ",b"],
      ["a,", "b"],
      ["a\0\0", ""],
      ["a", "\0\0"],
    ];
    lists.forEach(([a, b], index) => gauge.set({ a: a as string, b: b as string }, index));
    const samples = registry
      .render()
      .split("\n")
      .filter((line) => line.startsWith("smtpgate_test_nul{"));
    expect(samples).toHaveLength(lists.length);
  });

  it("runs collectors before rendering, for values read at scrape time", () => {
    const registry = new Registry();
    const entries = registry.gauge("smtpgate_test_entries", "Entries.");
    let size = 0;
    registry.onCollect(() => entries.set({}, size));
    size = 42;
    expect(registry.render()).toContain("smtpgate_test_entries 42\n");
  });

  it("refuses bad names, a wrong number of label values and a metric registered twice", () => {
    const registry = new Registry();
    expect(() => registry.counter("smtpgate-bad", "x")).toThrow(/not a metric name/);
    expect(() => registry.counter("smtpgate_ok_total", "x", ["bad-label"])).toThrow(/not a label name/);
    expect(() => registry.histogram("smtpgate_h", "x", ["le"])).toThrow(/"le"/);
    expect(() => registry.histogram("smtpgate_h2", "x", [], [1, 0.5])).toThrow(/increasing/);
    const counter = registry.counter("smtpgate_twice_total", "x", ["a"]);
    expect(() => counter.inc({} as { a: string })).toThrow(/no value for label a/);
    expect(() => registry.gauge("smtpgate_twice_total", "x")).toThrow(/registered twice/);
  });

  it("renders counters, histograms and gauges in registration order, labels given by name", () => {
    const registry = new Registry();
    const counter = registry.counter<"kind">("demo_events_total", "Events\\seen\nby kind", ["kind"]);
    counter.inc({ kind: 'a "quoted"\\value\nwith newline' });
    counter.inc({ kind: "b" }, 2);
    const histogram = registry.histogram<"call">("demo_seconds", "Latency", ["call"], [0.1, 1]);
    histogram.observe({ call: "x" }, 0.05);
    histogram.observe({ call: "x" }, 0.5);
    histogram.observe({ call: "x" }, 3);
    registry.gauge("demo_open", "Open things").inc(undefined, 4);
    expect(registry.render()).toBe(
      [
        "# HELP demo_events_total Events\\\\seen\\nby kind",
        "# TYPE demo_events_total counter",
        'demo_events_total{kind="a \\"quoted\\"\\\\value\\nwith newline"} 1',
        'demo_events_total{kind="b"} 2',
        "# HELP demo_seconds Latency",
        "# TYPE demo_seconds histogram",
        'demo_seconds_bucket{call="x",le="0.1"} 1',
        'demo_seconds_bucket{call="x",le="1"} 2',
        'demo_seconds_bucket{call="x",le="+Inf"} 3',
        'demo_seconds_sum{call="x"} 3.55',
        'demo_seconds_count{call="x"} 3',
        "# HELP demo_open Open things",
        "# TYPE demo_open gauge",
        "demo_open 4",
        "",
      ].join("\n"),
    );
  });

  it("counts gauges down, exposes touched histogram series at zero and reads values back", () => {
    const registry = new Registry();
    const open = registry.gauge("demo_open", "Open things");
    open.inc();
    open.inc();
    open.dec();
    expect(open.get()).toBe(1);
    registry.histogram<"call">("demo_seconds", "Latency", ["call"], [1]).touch({ call: "auth" });
    expect(registry.render()).toContain(
      'demo_seconds_bucket{call="auth",le="+Inf"} 0\ndemo_seconds_sum{call="auth"} 0\n',
    );
    expect(registry.counter<"a">("demo_total", "x", ["a"]).get({ a: "never" })).toBe(0);
  });

  it("refuses a counter going down and a reserved label name", () => {
    const registry = new Registry();
    const counter = registry.counter("demo_total", "x");
    expect(() => counter.inc(undefined, -1)).toThrow(/cannot go down/);
    expect(() => registry.counter("demo2_total", "x", ["__name"])).toThrow(/not a label name/);
  });
});
