/**
 * The edge relay's own configuration file (YAML or JSON). The mail-flow policy is not here: the relay fetches it
 * from the decision API (GET /v1/listeners/{name}). What is here is how to reach the API and the upstream, the
 * relay's own TLS identity, where to listen, and session limits.
 */
import { z } from "zod";
import { apiClientConfigSchema } from "../contract/api-client-config.ts";
import { parseDocument, validateDocument } from "../lib/config/document.ts";
import { readConfigText } from "../lib/node/read-config-file.ts";
import { XCLIENT_MODES } from "./xclient.ts";

const address = z.strictObject({
  host: z.string().min(1).default("127.0.0.1").describe("the address to listen on"),
  port: z.number().int().min(0).max(65535).describe("the port; 0 picks a free one (tests)"),
});

export const relayConfigSchema = z.strictObject({
  listener: z.string().min(1).max(64).describe("the API listener whose policy this relay enforces"),
  hostname: z
    .string()
    .min(1)
    .max(253)
    .default("localhost")
    .describe("the name in the greeting and in Received: headers"),
  api: apiClientConfigSchema({
    maxTimeoutMs: 60_000,
    whenSlow: "a slower API is a 454",
    refreshes: "new sessions get the new one",
  }),
  tls: z.strictObject({
    keyFile: z.string().min(1).describe("PEM, the relay's private key"),
    certFile: z.string().min(1).describe("PEM, the relay's certificate (and chain)"),
    minVersion: z.enum(["TLSv1.2", "TLSv1.3"]).default("TLSv1.2").describe("oldest TLS version offered to clients"),
  }),
  listen: z
    .strictObject({
      starttls: address.optional().describe("plain SMTP with STARTTLS (25/587)"),
      implicitTls: address.optional().describe("SMTP over TLS from the first byte (465)"),
      health: address
        .optional()
        .describe(
          "HTTP GET /livez (alive), GET /healthz (503 while starting, stopping or the upstream is down) and GET /metrics (Prometheus text); opened first, before the policy loads",
        ),
    })
    .refine((listen) => listen.starttls !== undefined || listen.implicitTls !== undefined, {
      message: "give starttls, implicitTls or both",
    }),
  upstream: z.strictObject({
    host: z.string().min(1).describe("your MTA, which receives every accepted message"),
    port: z.number().int().min(1).max(65535).default(25).describe("its SMTP port"),
    secure: z.boolean().default(false).describe("implicit TLS to the upstream"),
    requireTls: z.boolean().default(false).describe("STARTTLS to the upstream or fail"),
    tls: z
      .strictObject({
        caFile: z
          .string()
          .min(1)
          .optional()
          .describe("PEM bundle of CAs for the upstream's certificate (default: the system store)"),
        serverName: z.string().min(1).optional().describe("name checked in the upstream's certificate (default: host)"),
        rejectUnauthorized: z
          .boolean()
          .default(true)
          .describe("false: accept any upstream certificate (a trusted network only)"),
      })
      .default({ rejectUnauthorized: true })
      .describe("TLS towards the upstream; STARTTLS is used whenever it offers it"),
    maxConnections: z
      .number()
      .int()
      .min(1)
      .max(256)
      .default(8)
      .describe("connections to the upstream open at once: the pool, or with xclient one per message"),
    timeoutMs: z
      .number()
      .int()
      .min(1000)
      .max(600_000)
      .default(60_000)
      .describe("socket timeout towards the upstream; connect and greeting at most 10 s of it"),
    probeIntervalSeconds: z
      .number()
      .int()
      .min(0)
      .max(3_600)
      .default(15)
      .describe("how often /healthz's upstream probe connects (EHLO, QUIT); 0: never"),
    xclient: z
      .enum(XCLIENT_MODES)
      .default("off")
      .describe(
        "tell the upstream the real client and its login (XCLIENT): auto when it offers it, required or 451; one connection per message",
      ),
  }),
  limits: z
    .strictObject({
      authFailureDelayMs: z
        .number()
        .int()
        .min(0)
        .max(60_000)
        .default(2_000)
        .describe("delay before answering a failed AUTH"),
      maxAuthFailures: z
        .number()
        .int()
        .min(1)
        .max(100)
        .default(3)
        .describe("close the session after this many failed AUTHs"),
      maxClients: z
        .number()
        .int()
        .min(1)
        .max(100_000)
        .default(1_000)
        .describe("concurrent client connections per listening port"),
      greetingDelayMs: z
        .number()
        .int()
        .min(0)
        .max(10_000)
        .default(100)
        .describe(
          "wait before the greeting; a client that talks in it gets 421 (early-talker detection). Default smtp-server's 100 ms; 0 for submission ports, where no client talks first and the wait is only latency",
        ),
      socketTimeoutMs: z
        .number()
        .int()
        .min(1_000)
        .max(3_600_000)
        .default(60_000)
        .describe("idle timeout of a client connection"),
      shutdownGraceMs: z
        .number()
        .int()
        .min(0)
        .max(600_000)
        .default(10_000)
        .describe("on stop, how long sessions may finish their mail transaction before 421 4.3.2"),
      // Slow clients (docs/edge-relay.md; edge-relay/slow-clients.ts): past any of these, 421 4.4.2 and close.
      commandDeadlineMs: z
        .number()
        .int()
        .min(100)
        .max(600_000)
        .default(30_000)
        .describe("a command line must be complete this long after its first byte"),
      dataDeadlineMs: z
        .number()
        .int()
        .min(100)
        .max(3_600_000)
        .default(60_000)
        .describe("DATA must end this long after the 354, plus the time minDataBytesPerSecond earns"),
      minDataBytesPerSecond: z
        .number()
        .int()
        .min(0)
        .max(1_000_000_000)
        .default(500)
        .describe("every this many bytes of DATA push its deadline back by a second (0: a fixed deadline)"),
      maxSessionMs: z
        .number()
        .int()
        .min(1_000)
        .max(86_400_000)
        .default(600_000)
        .describe("a session lasts at most this long (a reply owed or a message in DATA is finished first)"),
    })
    .default({
      authFailureDelayMs: 2_000,
      maxAuthFailures: 3,
      maxClients: 1_000,
      greetingDelayMs: 100,
      socketTimeoutMs: 60_000,
      shutdownGraceMs: 10_000,
      commandDeadlineMs: 30_000,
      dataDeadlineMs: 60_000,
      minDataBytesPerSecond: 500,
      maxSessionMs: 600_000,
    }),
});

export type RelayConfig = z.output<typeof relayConfigSchema>;
export type RelayConfigInput = z.input<typeof relayConfigSchema>;

/** Validates a parsed relay configuration; throws ConfigError naming every problem. */
export function validateRelayConfig(document: unknown, source: string): RelayConfig {
  return validateDocument(relayConfigSchema, document, source);
}

/** Reads, parses and validates the relay's configuration file; throws ConfigError. */
export async function readRelayConfig(path: string): Promise<RelayConfig> {
  const document = parseDocument(await readConfigText(path), path, "listener, api, tls, listen and upstream");
  return validateRelayConfig(document, path);
}
