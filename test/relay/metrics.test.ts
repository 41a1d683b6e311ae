// GET /metrics on the relay's health port: Prometheus text format 0.0.4 that a strict line parser accepts, and
// counters that move with real sessions (swaks through flow B, a failed AUTH, a failed TLS handshake, an
// unreachable API). One registry per relay: two relays in this process never share a number.
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRelayMetrics, MetricsRegistry } from "../../edge-relay/metrics.ts";
import { startTestApi, TEST_TOKEN } from "../../dev/api.ts";
import { startTestRelay, type TestRelay } from "../../dev/relay.ts";
import { SEED } from "../../dev/slapd/index.ts";
import { stackApiConfig } from "../../dev/stack.ts";
import { waitFor } from "../../dev/wait.ts";
import { RawSmtp, swaks } from "./clients.ts";
import { ALICE, STACK_LISTENERS, startRelayFixture, type RelayFixture } from "./fixture.ts";

let fx: RelayFixture;

beforeAll(async () => {
  fx = await startRelayFixture({ listeners: [STACK_LISTENERS.password, STACK_LISTENERS.inbound] });
});

afterAll(async () => {
  await fx?.close();
});

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const SAMPLE = new RegExp(
  `^(${NAME})(\\{${LABEL}(?:,${LABEL})*\\})? (-?\\d+(?:\\.\\d+)?(?:e[+-]?\\d+)?|\\+Inf|-Inf|NaN)$`,
);
const COMMENT = new RegExp(`^# (HELP|TYPE) (${NAME}) (.*)$`);

interface Scrape {
  text: string;
  /** The value of one sample, e.g. value("smtpgate_relay_auth_total", { method: "password", result: "success" }). */
  value(name: string, labels?: Record<string, string>): number | undefined;
}

/**
 * Parses the exposition strictly: every line a `# HELP`/`# TYPE` comment or `name{labels} value`, one TYPE per
 * metric before its samples, histogram samples only as _bucket/_sum/_count of a histogram, labels unique.
 */
function parseExposition(text: string): Scrape {
  expect(text.endsWith("\n")).toBe(true);
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  for (const line of text.slice(0, -1).split("\n")) {
    const comment = COMMENT.exec(line);
    if (comment) {
      const [, kind, name, rest] = comment as unknown as [string, string, string, string];
      if (kind === "TYPE") {
        expect(["counter", "gauge", "histogram", "summary", "untyped"]).toContain(rest);
        expect(types.has(name), `second TYPE for ${name}`).toBe(false);
        types.set(name, rest);
      }
      continue;
    }
    const sample = SAMPLE.exec(line);
    expect(sample, `not a sample line: ${JSON.stringify(line)}`).not.toBeNull();
    const [, name, labelText = "", value] = sample as unknown as [string, string, string | undefined, string];
    const base = /^(.*)_(bucket|sum|count)$/.exec(name);
    const type = types.get(name) ?? (base ? types.get(base[1]!) : undefined);
    expect(type, `sample before its TYPE: ${name}`).toBeDefined();
    if (type === "histogram") expect(base && types.get(base[1]!) === "histogram").toBeTruthy();
    if (type === "counter") expect(name).toMatch(/_total$/);
    const labels = [...labelText.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map(
      ([, key, raw]) => [key!, raw!] as const,
    );
    expect(new Set(labels.map(([key]) => key)).size).toBe(labels.length);
    const key = `${name}{${labels
      .map(([k, v]) => `${k}=${v}`)
      .sort()
      .join(",")}}`;
    expect(samples.has(key), `duplicate sample ${key}`).toBe(false);
    samples.set(key, value === "+Inf" ? Infinity : value === "-Inf" ? -Infinity : Number(value));
  }
  return {
    text,
    value(name, labels = {}) {
      return samples.get(
        `${name}{${Object.entries(labels)
          .map(([k, v]) => `${k}=${v}`)
          .sort()
          .join(",")}}`,
      );
    },
  };
}

async function scrape(relay: TestRelay): Promise<Scrape> {
  const response = await fetch(`http://127.0.0.1:${relay.ports.health}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  return parseExposition(await response.text());
}

describe("the exposition format", () => {
  it("renders HELP, TYPE, escaped label values, and cumulative histogram buckets", () => {
    const registry = new MetricsRegistry();
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
    parseExposition(registry.render());
  });

  it("refuses a counter going down, a name registered twice and a reserved label", () => {
    const registry = new MetricsRegistry();
    const counter = registry.counter("demo_total", "x");
    expect(() => counter.inc(undefined, -1)).toThrow(/cannot go down/);
    expect(() => registry.counter("demo_total", "again")).toThrow(/registered twice/);
    expect(() => registry.counter("demo2_total", "x", ["__name"])).toThrow(/not a label name/);
  });

  it("gives every relay its own registry", () => {
    const one = createRelayMetrics();
    const two = createRelayMetrics();
    one.messages.inc({ result: "relayed" });
    expect(two.messages.get({ result: "relayed" })).toBe(0);
  });
});

describe("GET /metrics of a running relay", () => {
  const relay = () => fx.stack.relays[STACK_LISTENERS.password]!;

  it("exposes every relay metric from the start, with the fixed label sets at zero", async () => {
    const { text, value } = await scrape(relay());
    for (const name of [
      "smtpgate_relay_sessions_total",
      "smtpgate_relay_sessions_active",
      "smtpgate_relay_tls_total",
      "smtpgate_relay_auth_total",
      "smtpgate_relay_messages_total",
      "smtpgate_relay_message_bytes_total",
      "smtpgate_relay_dsn_total",
      "smtpgate_relay_api_errors_total",
      "smtpgate_relay_upstream_errors_total",
      "smtpgate_relay_policy_refresh_failures_total",
      "smtpgate_relay_decision_seconds",
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(value("smtpgate_relay_auth_total", { method: "certificate", result: "tempfail" })).toBe(0);
    expect(value("smtpgate_relay_messages_total", { result: "too-big" })).toBe(0);
    expect(value("smtpgate_relay_decision_seconds_bucket", { call: "tls", le: "+Inf" })).toBe(0);
  });

  it("counts a relayed session: connect, TLS, AUTH, message and bytes, API latency; the active gauge returns to 0", async () => {
    const before = await scrape(relay());
    const result = await swaks(
      relay().ports.starttls!,
      [
        "--from",
        ALICE.address,
        "--to",
        "friend@other.example",
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        ALICE.user,
        "--auth-password",
        ALICE.password,
      ],
      { ca: fx.caFile },
    );
    expect(result.code).toBe(0);
    // onClose runs just after the socket closes.
    await waitFor(() => relay().metrics.sessionsActive.get() === 0, { what: "the session to close" });
    const after = await scrape(relay());
    const delta = (name: string, labels?: Record<string, string>) =>
      (after.value(name, labels) ?? 0) - (before.value(name, labels) ?? 0);
    expect(delta("smtpgate_relay_sessions_total", { policy: "SUBMISSION", result: "accepted" })).toBe(1);
    expect(delta("smtpgate_relay_tls_total", { result: "success", protocol: "TLSv1.3" })).toBe(1);
    expect(delta("smtpgate_relay_auth_total", { method: "password", result: "success" })).toBe(1);
    expect(delta("smtpgate_relay_messages_total", { result: "relayed" })).toBe(1);
    expect(delta("smtpgate_relay_message_bytes_total")).toBeGreaterThan(100);
    expect(delta("smtpgate_relay_decision_seconds_count", { call: "auth" })).toBe(1);
    expect(delta("smtpgate_relay_decision_seconds_bucket", { call: "auth", le: "+Inf" })).toBe(1);
    expect(delta("smtpgate_relay_decision_seconds_sum", { call: "auth" })).toBeGreaterThan(0);
    expect(after.value("smtpgate_relay_sessions_active")).toBe(0);
    expect(delta("smtpgate_relay_api_errors_total", { call: "auth" })).toBe(0);
  });

  it("counts a failed AUTH and a failed TLS handshake, and never names the user or the client address", async () => {
    const before = await scrape(relay());
    const client = await RawSmtp.connect(relay().ports.starttls!);
    try {
      expect((await client.submissionLogin(await fx.tls(), "mallory-the-guesser", "wrong")).last).toBe(
        "535 5.7.8 Authentication credentials invalid",
      );
    } finally {
      await client.quit();
    }
    // Plaintext on the implicit TLS port: the handshake fails.
    await new Promise<void>((resolve) => {
      const socket = connect({ host: "127.0.0.1", port: relay().ports.implicitTls! }, () =>
        socket.end("EHLO not-tls.example\r\n\r\n"),
      );
      socket.on("error", () => resolve());
      socket.on("close", () => resolve());
    });
    await waitFor(
      () =>
        relay().metrics.tls.get({ result: "failure", protocol: "unknown" }) >
        (before.value("smtpgate_relay_tls_total", { result: "failure", protocol: "unknown" }) ?? 0),
      { what: "the failed handshake to be counted" },
    );
    const after = await scrape(relay());
    expect(
      (after.value("smtpgate_relay_auth_total", { method: "password", result: "failure" }) ?? 0) -
        (before.value("smtpgate_relay_auth_total", { method: "password", result: "failure" }) ?? 0),
    ).toBe(1);
    expect(after.text).not.toContain("mallory");
    expect(after.text).not.toContain("127.0.0.1");
  });

  it("counts sessions per policy for each relay separately (the inbound relay saw none of the above)", async () => {
    const inbound = await scrape(fx.stack.relays[STACK_LISTENERS.inbound]!);
    expect(
      inbound.value("smtpgate_relay_sessions_total", { policy: "SUBMISSION", result: "accepted" }),
    ).toBeUndefined();
    expect(inbound.value("smtpgate_relay_auth_total", { method: "password", result: "success" })).toBe(0);
  });

  it("counts API errors, AUTH tempfails and failed policy refreshes when the API goes away", async () => {
    const api = await startTestApi(stackApiConfig(fx.stack.slapd, fx.stack.pki, fx.stack.crls.baseUrl), {
      BIND_PW: SEED.servicePassword,
    });
    const orphan = await startTestRelay({
      apiUrl: api.url,
      apiToken: TEST_TOKEN,
      listener: STACK_LISTENERS.password,
      upstreamPort: fx.stack.sink.port,
      serverPki: fx.stack.slapd.pki,
    });
    try {
      await api.close();
      const client = await RawSmtp.connect(orphan.ports.starttls!);
      try {
        expect((await client.submissionLogin(await fx.tls(), ALICE.user, ALICE.password)).last).toBe(
          "454 4.7.0 Temporary authentication failure",
        );
      } finally {
        await client.quit();
      }
      await orphan.policy.refresh();
      const { value } = await scrape(orphan);
      expect(value("smtpgate_relay_api_errors_total", { call: "auth" })).toBe(1);
      expect(value("smtpgate_relay_auth_total", { method: "password", result: "tempfail" })).toBe(1);
      expect(value("smtpgate_relay_decision_seconds_count", { call: "auth" })).toBe(1);
      expect(value("smtpgate_relay_api_errors_total", { call: "policy" })).toBe(1);
      expect(value("smtpgate_relay_policy_refresh_failures_total")).toBe(1);
    } finally {
      await orphan.close();
    }
  });
});
