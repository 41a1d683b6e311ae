/**
 * The upstream MTA as the relay uses it: a pool of nodemailer SMTP connections (upstream-connections.ts), with the
 * relay's config and metrics beside it (what delivery.ts and refused-recipients.ts share), and, under
 * `upstream.xclient`, a connection of its own for each client's message (xclient.ts says why it cannot be pooled).
 */
import type { SMTPConnectionOptions } from "nodemailer/lib/smtp-connection";
import type { RelayConfig } from "./config.ts";
import type { RelayMetrics } from "./metrics.ts";
import { UpstreamPool } from "./upstream-connections.ts";

/** How every connection to the upstream is made, pooled or not. */
export function connectionOptions(config: RelayConfig, upstreamCa: string | undefined): SMTPConnectionOptions {
  return {
    host: config.upstream.host,
    port: config.upstream.port,
    secure: config.upstream.secure,
    requireTLS: config.upstream.requireTls,
    name: config.hostname,
    connectionTimeout: Math.min(config.upstream.timeoutMs, 10_000),
    greetingTimeout: Math.min(config.upstream.timeoutMs, 10_000),
    socketTimeout: config.upstream.timeoutMs,
    logger: false,
    tls: {
      minVersion: "TLSv1.2" as const,
      rejectUnauthorized: config.upstream.tls.rejectUnauthorized,
      ...(upstreamCa ? { ca: upstreamCa } : {}),
      ...(config.upstream.tls.serverName ? { servername: config.upstream.tls.serverName } : {}),
    },
  };
}

export function createUpstreamPool(config: RelayConfig, upstreamCa: string | undefined): UpstreamPool {
  return new UpstreamPool(connectionOptions(config, upstreamCa), config.upstream.maxConnections);
}

export interface Upstream {
  readonly pool: UpstreamPool;
  readonly config: RelayConfig;
  readonly metrics: RelayMetrics;
  /** PEM CA bundle for the upstream's certificate (the per-message connections of upstream.xclient use it too). */
  readonly upstreamCa?: string | undefined;
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
