// The relay's /healthz reflects its dependencies (edge-relay/health.ts): 503 `upstream-unavailable` once the
// upstream probe fails (the test upstream stopped, or nothing listening), 200 again once it answers, the failing
// dependency named in the body; /livez stays 200 throughout. The probe runs on its interval, not per request.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateServerPki, type ServerPki } from "../../dev/server-pki.ts";
import { freePort } from "../../dev/ports.ts";
import { startTestRelay } from "../../dev/relay.ts";
import { startSink } from "../../dev/sink.ts";
import { sleep } from "../../dev/wait.ts";
import { FakeListenerApi, LISTENER, listenerPolicy } from "./fake-listener-api.ts";

const TOKEN = "fake-api-token";

let dir: string;
let pki: ServerPki;
let fake: FakeListenerApi;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "smtpgate-relay-health-"));
  pki = await generateServerPki(dir);
  fake = await FakeListenerApi.start();
  fake.document = listenerPolicy("TRUSTED");
});

afterAll(async () => {
  await fake?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Health {
  status: number;
  body: {
    status: string;
    dependencies: {
      api: { ok: boolean; error: string | null };
      upstream: { ok: boolean | null; error: string | null; checkedAt: string | null };
    };
  };
}

async function health(port: number, path = "/healthz"): Promise<Health> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: (await response.json()) as Health["body"] };
}

/** Asks until `wanted` holds (the probe runs every second) or 4 s pass; returns the last answer. */
async function healthUntil(port: number, wanted: (answer: Health) => boolean): Promise<Health> {
  let answer = await health(port);
  for (let i = 0; i < 40 && !wanted(answer); i++) {
    await sleep(100);
    answer = await health(port);
  }
  return answer;
}

const relayTo = (upstreamPort: number) =>
  startTestRelay({
    apiUrl: fake.url,
    apiToken: TOKEN,
    listener: LISTENER,
    upstreamPort,
    serverPki: pki,
    overrides: { upstream: { host: "127.0.0.1", port: upstreamPort, timeoutMs: 2_000, probeIntervalSeconds: 1 } },
  });

describe("/healthz and the upstream", () => {
  it("answers 503 upstream-unavailable once the upstream is stopped, naming it, while /livez stays 200", async () => {
    const upstream = await startSink();
    const relay = await relayTo(upstream.port);
    try {
      const up = await healthUntil(relay.ports.health!, (answer) => answer.body.dependencies.upstream.ok !== null);
      expect(up.status).toBe(200);
      expect(up.body).toMatchObject({
        status: "ok",
        dependencies: { api: { ok: true, error: null }, upstream: { ok: true, error: null } },
      });

      await upstream.close();
      const down = await healthUntil(relay.ports.health!, (answer) => answer.status === 503);
      expect(down.status).toBe(503);
      expect(down.body).toMatchObject({
        status: "upstream-unavailable",
        dependencies: { api: { ok: true }, upstream: { ok: false, error: expect.stringMatching(/ECONNREFUSED/) } },
      });
      expect(relay.logs).toContainEqual(
        expect.objectContaining({ level: "warn", msg: "upstream unreachable: /healthz answers 503" }),
      );
      expect((await health(relay.ports.health!, "/livez")).status).toBe(200);
    } finally {
      await relay.close();
    }
  });

  it("comes back to 200 once the upstream answers, probing on its interval and not per request", async () => {
    const port = await freePort();
    const relay = await relayTo(port);
    try {
      expect(
        await healthUntil(relay.ports.health!, (answer) => answer.body.dependencies.upstream.ok !== null),
      ).toMatchObject({
        status: 503,
        body: { status: "upstream-unavailable" },
      });
      const sink = await startSink({ port });
      try {
        const back = await healthUntil(relay.ports.health!, (answer) => answer.status === 200);
        expect(back.body).toMatchObject({ status: "ok", dependencies: { upstream: { ok: true } } });
        expect(relay.logs).toContainEqual(expect.objectContaining({ level: "info", msg: "upstream reachable again" }));
        // Cached: twenty requests in a row see the same probe.
        const checked = new Set<string | null>();
        for (let i = 0; i < 20; i++)
          checked.add((await health(relay.ports.health!)).body.dependencies.upstream.checkedAt);
        expect(checked.size).toBeLessThanOrEqual(2);
      } finally {
        await sink.close();
      }
    } finally {
      await relay.close();
    }
  });
});
