/**
 * The edge relay's own configuration file (YAML or JSON). The mail-flow policy is not here: the relay fetches it
 * from the decision API (GET /v1/listeners/{name}). What is here is how to reach the API and the upstream, the
 * relay's own TLS identity, where to listen, and session limits.
 */
import { z } from "zod";
import { parseDocument, validateDocument } from "../lib/config/document.ts";
import { secretRef } from "../lib/config/secret-ref.ts";
import { readConfigText } from "../lib/node/read-config-file.ts";
import { XCLIENT_MODES } from "./xclient.ts";

const address = z.strictObject({
  host: z.string().min(1).default("127.0.0.1"),
  port: z.number().int().min(0).max(65535),
});

export const relayConfigSchema = z.strictObject({
  listener: z.string().min(1).max(64).describe("the API listener whose policy this relay enforces"),
  hostname: z
    .string()
    .min(1)
    .max(253)
    .default("localhost")
    .describe("the name in the greeting and in Received: headers"),
  api: z.strictObject({
    url: z.url({ protocol: /^https?$/ }).describe("the decision API, e.g. http://127.0.0.1:8787"),
    token: secretRef,
    timeoutMs: z
      .number()
      .int()
      .min(100)
      .max(60_000)
      .default(3_000)
      .describe("per decision call; a slower API is a 454"),
    connections: z.number().int().min(1).max(1024).default(32),
    policyRefreshSeconds: z.number().int().min(1).max(86_400).default(60),
  }),
  tls: z.strictObject({
    keyFile: z.string().min(1),
    certFile: z.string().min(1).describe("PEM, the relay's certificate (and chain)"),
    minVersion: z.enum(["TLSv1.2", "TLSv1.3"]).default("TLSv1.2"),
  }),
  listen: z
    .strictObject({
      starttls: address.optional().describe("plain SMTP with STARTTLS (25/587)"),
      implicitTls: address.optional().describe("SMTP over TLS from the first byte (465)"),
      health: address.optional().describe("HTTP GET /healthz (503 while stopping) and GET /metrics (Prometheus text)"),
    })
    .refine((listen) => listen.starttls !== undefined || listen.implicitTls !== undefined, {
      message: "give starttls, implicitTls or both",
    }),
  upstream: z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(25),
    secure: z.boolean().default(false).describe("implicit TLS to the upstream"),
    requireTls: z.boolean().default(false).describe("STARTTLS to the upstream or fail"),
    tls: z
      .strictObject({
        caFile: z.string().min(1).optional(),
        serverName: z.string().min(1).optional(),
        rejectUnauthorized: z.boolean().default(true),
      })
      .default({ rejectUnauthorized: true }),
    maxConnections: z
      .number()
      .int()
      .min(1)
      .max(256)
      .default(8)
      .describe("connections to the upstream open at once: the pool, or with xclient one per message"),
    timeoutMs: z.number().int().min(1000).max(600_000).default(60_000),
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
      maxClients: z.number().int().min(1).max(100_000).default(1_000),
      socketTimeoutMs: z.number().int().min(1_000).max(3_600_000).default(60_000),
      shutdownGraceMs: z
        .number()
        .int()
        .min(0)
        .max(600_000)
        .default(10_000)
        .describe("on stop, how long sessions may finish their mail transaction before 421 4.3.2"),
    })
    .default({
      authFailureDelayMs: 2_000,
      maxAuthFailures: 3,
      maxClients: 1_000,
      socketTimeoutMs: 60_000,
      shutdownGraceMs: 10_000,
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
