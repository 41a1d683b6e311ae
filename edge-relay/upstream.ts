/**
 * The upstream MTA as the relay uses it: one pooled nodemailer SMTP transport, with the relay's config and
 * metrics beside it (what delivery.ts and refused-recipients.ts share).
 */
import nodemailer from "nodemailer";
import type { RelayConfig } from "./config.ts";
import type { RelayMetrics } from "./metrics.ts";

export function createUpstreamTransport(config: RelayConfig, upstreamCa: string | undefined) {
  return nodemailer.createTransport({
    pool: true,
    host: config.upstream.host,
    port: config.upstream.port,
    secure: config.upstream.secure,
    requireTLS: config.upstream.requireTls,
    name: config.hostname,
    maxConnections: config.upstream.maxConnections,
    connectionTimeout: Math.min(config.upstream.timeoutMs, 10_000),
    greetingTimeout: Math.min(config.upstream.timeoutMs, 10_000),
    socketTimeout: config.upstream.timeoutMs,
    logger: false,
    tls: {
      minVersion: "TLSv1.2",
      rejectUnauthorized: config.upstream.tls.rejectUnauthorized,
      ...(upstreamCa ? { ca: upstreamCa } : {}),
      ...(config.upstream.tls.serverName ? { servername: config.upstream.tls.serverName } : {}),
    },
  });
}

export interface Upstream {
  readonly transport: ReturnType<typeof createUpstreamTransport>;
  readonly config: RelayConfig;
  readonly metrics: RelayMetrics;
}

/** What nodemailer's errors carry: the SMTP reply (if there was one) and an error code. */
export type UpstreamError = Error & { responseCode?: number; response?: string; code?: string };

/** Failures where the upstream could not be used at all (or said 421) are upstream errors; refusals are not. */
export function countUpstreamFailure(upstream: Upstream, failure: UpstreamError): void {
  if (!failure.responseCode || failure.responseCode === 421) upstream.metrics.upstreamErrors.inc();
}

/** "550 5.1.1 no such user" → "no such user". */
export function stripReplyCode(response: string): string {
  return response.replace(/^\d{3}[ -](\d\.\d{1,3}\.\d{1,3} )?/, "");
}
