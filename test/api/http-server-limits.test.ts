// The API's HTTP server against slow and idle clients: a client that dribbles its headers, or holds a request
// open, is cut at the configured limit; an idle keep-alive connection is closed after keepAliveTimeoutMs.
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_TOKENS_CONFIG, slapdDirectory, TEST_TOKEN, startTestApi, type TestApi } from "../../dev/api.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";

let slapd: SlapdInstance;
let api: TestApi;

const LIMITS = { headersTimeoutMs: 400, requestTimeoutMs: 800, keepAliveTimeoutMs: 1_000 };

beforeAll(async () => {
  slapd = await startSlapd();
  api = await startTestApi(
    {
      directories: {
        corp: slapdDirectory(slapd),
      },
      smtpAuthQueries: { q: { directory: "corp" } },
      authProfiles: { corp: { type: "ldap", query: "q" } },
      listeners: { submission: { authProfile: "corp" } },
      api: { ...API_TOKENS_CONFIG, ...LIMITS },
    },
    { BIND_PW: SEED.servicePassword },
  );
});

afterAll(async () => {
  await api?.close();
  await slapd?.close();
});

/** A raw TCP client: what it was sent back, and how long the server kept the connection. */
async function rawClient(write: (socket: net.Socket) => void): Promise<{ received: string; openMs: number }> {
  const { port } = new URL(api.url);
  const socket = net.connect({ host: "127.0.0.1", port: Number(port) });
  await new Promise((resolve) => socket.once("connect", resolve));
  const began = Date.now();
  let received = "";
  socket.on("data", (chunk: Buffer) => (received += chunk.toString()));
  socket.on("error", () => {});
  write(socket);
  await new Promise((resolve) => socket.once("close", resolve));
  return { received, openMs: Date.now() - began };
}

const body = JSON.stringify({
  listener: "submission",
  client: { ip: "192.0.2.25" },
  mechanism: "PLAIN",
  username: "alice",
  password: SEED.users.alice.password,
});

describe("slow clients", () => {
  it("cuts a client that never finishes its headers with 408 after headersTimeoutMs", async () => {
    const { received, openMs } = await rawClient((socket) => {
      socket.write(`POST /v1/decide/auth HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer ${TEST_TOKEN}\r\n`);
    });
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(openMs).toBeGreaterThanOrEqual(LIMITS.headersTimeoutMs - 50);
    expect(openMs).toBeLessThan(LIMITS.headersTimeoutMs + 1_000);
  });

  it("cuts a client that sends its headers but holds back the body after requestTimeoutMs", async () => {
    const { received, openMs } = await rawClient((socket) => {
      socket.write(
        `POST /v1/decide/auth HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer ${TEST_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`,
      );
    });
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(openMs).toBeLessThan(LIMITS.requestTimeoutMs + 1_000);
  });

  it("answers a client that sends its request in time, and closes the idle connection after keepAliveTimeoutMs", async () => {
    const { received, openMs } = await rawClient((socket) => {
      socket.write(
        `POST /v1/decide/auth HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer ${TEST_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      );
    });
    expect(received).toMatch(/^HTTP\/1\.1 200 /);
    expect(received).toContain("Keep-Alive: timeout=1");
    expect(received).toContain('"verdict":"allow"');
    // Node waits a second longer than it announces (keepAliveTimeoutBuffer), so a client never races the close.
    expect(openMs).toBeGreaterThanOrEqual(LIMITS.keepAliveTimeoutMs);
    expect(openMs).toBeLessThan(LIMITS.keepAliveTimeoutMs + 2_000);
  });
});
