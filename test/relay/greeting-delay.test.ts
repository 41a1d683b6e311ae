// The wait before the greeting (limits.greetingDelayMs): smtp-server's 100 ms early-talker window by default, none
// where a listener sets 0; a client that talks in the window is refused either way.
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_TOKEN } from "../../dev/api.ts";
import { startTestRelay, type TestRelay } from "../../dev/relay.ts";
import { STACK_LISTENERS, startRelayFixture, type RelayFixture } from "./fixture.ts";

let fx: RelayFixture;
const relays: TestRelay[] = [];

beforeAll(async () => {
  fx = await startRelayFixture({ listeners: [STACK_LISTENERS.password] });
});

afterAll(async () => {
  for (const relay of relays) await relay.close();
  await fx?.close();
});

async function relayWaiting(greetingDelayMs?: number): Promise<number> {
  const relay = await startTestRelay({
    apiUrl: fx.stack.api.url,
    apiToken: TEST_TOKEN,
    listener: STACK_LISTENERS.password,
    upstreamPort: fx.stack.sink.port,
    serverPki: fx.stack.slapd.pki,
    overrides: { limits: { authFailureDelayMs: 0, ...(greetingDelayMs === undefined ? {} : { greetingDelayMs }) } },
  });
  relays.push(relay);
  return relay.ports.starttls as number;
}

/** Connects, optionally talks at once, and gives the first line the relay sends and how long it took. */
function firstLine(port: number, talkAtOnce: boolean): Promise<{ line: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const began = performance.now();
    const socket: Socket = connect({ host: "127.0.0.1", port }, () => {
      if (talkAtOnce) socket.write("EHLO early.example\r\n");
    });
    let text = "";
    socket.on("data", (chunk) => {
      text += chunk.toString("latin1");
      const end = text.indexOf("\r\n");
      if (end < 0) return;
      resolve({ line: text.slice(0, end), ms: performance.now() - began });
      socket.destroy();
    });
    socket.once("error", reject);
  });
}

describe("the wait before the greeting", () => {
  it("waits smtp-server's 100 ms by default, and refuses a client that talks in it", async () => {
    const port = await relayWaiting();
    const greeted = await firstLine(port, false);
    expect(greeted.line).toMatch(/^220 /);
    expect(greeted.ms).toBeGreaterThanOrEqual(95);
    expect((await firstLine(port, true)).line).toMatch(/^421 /);
  });

  it("greets at once with greetingDelayMs: 0", async () => {
    const port = await relayWaiting(0);
    const times: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      const greeted = await firstLine(port, false);
      expect(greeted.line).toMatch(/^220 /);
      times.push(greeted.ms);
    }
    expect(Math.min(...times)).toBeLessThan(50);
  });

  it("waits what the listener asks for", async () => {
    const port = await relayWaiting(300);
    expect((await firstLine(port, false)).ms).toBeGreaterThanOrEqual(295);
    expect((await firstLine(port, true)).line).toMatch(/^421 /);
  });
});
