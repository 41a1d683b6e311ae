// The listener policy as the relay holds it: loaded once, refreshed with If-None-Match (a 304 costs no parse),
// replaced when it changed, kept as the last good copy when the API fails or serves something unusable. The real
// API's configuration is immutable per process, so a small fake of GET /v1/listeners/{name} (node:http on
// 127.0.0.1) plays the API here, with a log of every request it answered.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiClient } from "../../contract/api-client.ts";
import { ListenerPolicyHolder } from "../../contract/listener-policy-holder.ts";
import type { LogRecord } from "../../edge-relay/log.ts";
import { generateServerPki, type ServerPki } from "../../dev/server-pki.ts";
import { startTestRelay } from "../../dev/relay.ts";
import { startSink, type Sink } from "../../dev/sink.ts";
import { waitFor } from "../../dev/wait.ts";
import { RawSmtp } from "./clients.ts";
import { FakeListenerApi, LISTENER, listenerPolicy } from "./fake-listener-api.ts";

const TOKEN = "fake-api-token";

let fake: FakeListenerApi;

beforeAll(async () => {
  fake = await FakeListenerApi.start();
});

afterAll(async () => {
  await fake?.close();
});

describe("ListenerPolicyHolder against a fake API", () => {
  it("loads, answers 304s with the same copy, takes a changed table, and keeps the last good copy when the API fails", async () => {
    fake.document = listenerPolicy("TRUSTED");
    fake.etag = '"v1"';
    fake.failWith = null;
    const start = fake.served.length;
    const logs: LogRecord[] = [];
    const failures: string[] = [];
    const api = new ApiClient({ url: fake.url, token: TOKEN, timeoutMs: 1_000, connections: 2 });
    const holder = new ListenerPolicyHolder(api, LISTENER, (record) => logs.push(record), {
      onRefreshFailure: (stage) => failures.push(stage),
    });
    try {
      await holder.load();
      expect(holder.match("127.0.0.1")).toMatchObject({
        group: "LOCAL",
        policyName: "TRUSTED",
        policy: { behaviour: "relay" },
      });
      expect(holder.match("192.0.2.1")).toBeNull();
      const first = holder.policy;

      // Unchanged: a conditional request, 304, the same object (nothing parsed or recompiled).
      await holder.refresh();
      await holder.refresh();
      expect(holder.policy).toBe(first);
      expect(holder.lastError).toBeNull();

      // Changed: the new table is in force at once.
      fake.document = listenerPolicy("BLOCKED");
      fake.etag = '"v2"';
      await holder.refresh();
      expect(holder.match("127.0.0.1")).toMatchObject({ policyName: "BLOCKED", policy: { behaviour: "reject" } });
      expect(logs).toContainEqual(
        expect.objectContaining({ level: "info", msg: "listener policy updated", etag: '"v2"' }),
      );

      // The API fails: the last good copy stays, the error is reported.
      fake.failWith = 500;
      await holder.refresh();
      expect(holder.lastError).toMatch(/^GET \/v1\/listeners\/edge: HTTP 500: /);
      expect(holder.match("127.0.0.1")).toMatchObject({ policyName: "BLOCKED" });
      expect(logs).toContainEqual(
        expect.objectContaining({
          level: "warn",
          msg: "listener policy refresh failed; keeping the last good copy",
          stage: "fetch",
        }),
      );

      // The API serves a table it cannot install (a sender group naming no policy): the last good copy stays.
      fake.failWith = null;
      fake.document = {
        ...listenerPolicy("BLOCKED"),
        hostAccessTable: [{ name: "LOCAL", match: ["127.0.0.0/8"], policy: "MISSING" }],
      };
      fake.etag = '"v3-broken"';
      await holder.refresh();
      expect(holder.lastError).toBe("sender group LOCAL names an unknown policy MISSING");
      expect(holder.match("127.0.0.1")).toMatchObject({ policyName: "BLOCKED" });

      // And not even JSON.
      fake.document = undefined;
      fake.etag = '"v4-empty"';
      await holder.refresh();
      expect(holder.lastError).not.toBeNull();
      expect(holder.match("127.0.0.1")).toMatchObject({ policyName: "BLOCKED" });
      expect(failures).toEqual(["fetch", "install", "fetch"]);

      // The API recovers: the next refresh clears the error.
      fake.document = listenerPolicy("TRUSTED");
      fake.etag = '"v5"';
      await holder.refresh();
      expect(holder.lastError).toBeNull();
      expect(holder.match("127.0.0.1")).toMatchObject({ policyName: "TRUSTED" });
      await holder.refresh();

      const served = fake.served.slice(start);
      expect(served.map(({ ifNoneMatch, status }) => [ifNoneMatch, status])).toEqual([
        [null, 200],
        ['"v1"', 304],
        ['"v1"', 304],
        ['"v1"', 200],
        ['"v2"', 500],
        ['"v2"', 200],
        // The broken table was never installed, so its ETag is not remembered either.
        ['"v2"', 200],
        ['"v2"', 200],
        ['"v5"', 304],
      ]);
      expect(served.every((entry) => entry.authorization === `Bearer ${TOKEN}`)).toBe(true);
    } finally {
      await api.close();
    }
  });

  it("refuses to load at all when the first fetch fails (no policy, no start)", async () => {
    fake.failWith = 503;
    const api = new ApiClient({ url: fake.url, token: TOKEN, timeoutMs: 1_000, connections: 1 });
    try {
      await expect(new ListenerPolicyHolder(api, LISTENER, () => {}).load()).rejects.toThrow(/HTTP 503/);
    } finally {
      fake.failWith = null;
      await api.close();
    }
  });
});

describe("a running relay refreshing its policy on the timer (policyRefreshSeconds: 1)", () => {
  let dir: string;
  let pki: ServerPki;
  let upstream: Sink;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "smtpgate-policy-refresh-"));
    pki = await generateServerPki(dir);
    upstream = await startSink({ closeTimeoutMs: 1_000 });
  });

  afterAll(async () => {
    await upstream?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("asks with If-None-Match, gets 304s, applies a changed table to new connections, and reports a failing API in /healthz", async () => {
    fake.document = listenerPolicy("TRUSTED");
    fake.etag = '"r1"';
    fake.failWith = null;
    const start = fake.served.length;
    const relay = await startTestRelay({
      apiUrl: fake.url,
      apiToken: TOKEN,
      listener: LISTENER,
      upstreamPort: upstream.port,
      serverPki: pki,
      overrides: { api: { url: fake.url, token: { env: "UNUSED" }, timeoutMs: 1_000, policyRefreshSeconds: 1 } },
    });
    try {
      const greeting = async () => {
        const client = await RawSmtp.connect(relay.ports.starttls!);
        try {
          return client.greeting.last;
        } finally {
          await client.quit();
        }
      };
      expect(await greeting()).toMatch(/^220 relay\.test ESMTP/);

      // The timer's refreshes are conditional and answered 304.
      await waitFor(() => fake.statusesSince(start).filter((status) => status === 304).length >= 1, {
        timeoutMs: 4_000,
        what: "a 304 to a timed refresh",
      });
      expect(fake.served.slice(start).find((entry) => entry.status === 304)?.ifNoneMatch).toBe('"r1"');

      // A changed table reaches new connections on the next refresh.
      const beforeChange = fake.served.length;
      fake.document = listenerPolicy("BLOCKED");
      fake.etag = '"r2"';
      await waitFor(() => fake.statusesSince(beforeChange).includes(200), { timeoutMs: 4_000, what: "a 200" });
      expect(await greeting()).toBe("554 5.7.1 Access denied");

      // The API fails: the relay keeps enforcing the last good copy and says so on /healthz and /metrics.
      const beforeFailure = fake.served.length;
      fake.failWith = 500;
      await waitFor(() => fake.statusesSince(beforeFailure).includes(500), { timeoutMs: 4_000, what: "a 500" });
      await waitFor(() => relay.policy.lastError !== null, { what: "the refresh error to be recorded" });
      const health = (await (await fetch(`http://127.0.0.1:${relay.ports.health}/healthz`)).json()) as {
        status: string;
        policyRefreshError: string | null;
      };
      expect(health.status).toBe("ok");
      expect(health.policyRefreshError).toMatch(/HTTP 500/);
      expect(relay.metrics.policyRefreshFailures.get()).toBeGreaterThanOrEqual(1);
      expect(await greeting()).toBe("554 5.7.1 Access denied");

      // Every request after the first carried the ETag of the copy in force.
      const conditional = fake.served.slice(start + 1);
      expect(conditional.length).toBeGreaterThanOrEqual(3);
      expect(conditional.every((entry) => entry.ifNoneMatch === '"r1"' || entry.ifNoneMatch === '"r2"')).toBe(true);
    } finally {
      fake.failWith = null;
      await relay.close();
    }
  });
});
