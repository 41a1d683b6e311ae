/**
 * The relay's metrics, served as Prometheus text (exposition format 0.0.4) by GET /metrics on the health port.
 *
 * One registry per relay instance (tests run several relays in one process, and a process-wide registry would
 * mix them). Labels take only values from small fixed sets or from the configuration (mail-flow policy names):
 * never a user, an address or an IP, so the number of series stays bounded whatever clients do.
 *
 *   const metrics = createRelayMetrics();
 *   metrics.messages.inc({ result: "relayed" });
 *   response.end(metrics.registry.render());
 */
import { CONTENT_TYPE, Registry } from "../lib/prometheus.ts";

/** The Content-Type of the text format, version 0.0.4. */
export const METRICS_CONTENT_TYPE = CONTENT_TYPE;

/** API call latency buckets, in seconds: a decision is a few ms, the relay's own timeout a few s. */
export const DECISION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export type SessionResult = "accepted" | "rejected" | "tcprefuse" | "too-many-connections" | "shutting-down";
export type AuthResult = "success" | "failure" | "tempfail";
export type MessageResult = "relayed" | "refused" | "tempfail" | "too-big";
export type DsnResult = "sent" | "failed" | "refused" | "suppressed";
export type ApiCall = "tls" | "auth" | "policy";

/** The relay's metrics (README lists them with their meaning). */
export function createRelayMetrics() {
  const registry = new Registry();
  const metrics = {
    registry,
    sessions: registry.counter<"policy" | "result">(
      "smtpgate_relay_sessions_total",
      "SMTP connections by the mail-flow policy of their sender group (none: no group matched) and what the relay did at connect",
      ["policy", "result"],
    ),
    sessionsActive: registry.gauge(
      "smtpgate_relay_sessions_active",
      "SMTP sessions open now (accepted at connect, not yet closed)",
    ),
    tls: registry.counter<"result" | "protocol">(
      "smtpgate_relay_tls_total",
      "TLS handshakes with clients (STARTTLS and implicit TLS) by result and protocol version",
      ["result", "protocol"],
    ),
    auth: registry.counter<"method" | "result">(
      "smtpgate_relay_auth_total",
      "Authentication decisions: client certificates at TLS time and SMTP AUTH passwords, by result (tempfail: API or directory unavailable)",
      ["method", "result"],
    ),
    messages: registry.counter<"result">(
      "smtpgate_relay_messages_total",
      "Messages at the end of DATA by outcome: relayed (the upstream accepted), refused (5xx), tempfail (4xx), too-big",
      ["result"],
    ),
    messageBytes: registry.counter(
      "smtpgate_relay_message_bytes_total",
      "Bytes of message data relayed to the upstream (as received from clients, without the added Received: header)",
    ),
    dsn: registry.counter<"result">(
      "smtpgate_relay_dsn_total",
      "Delivery status notifications for recipients the upstream refused while accepting others: sent, failed (client told 451), refused (client told 5xx), suppressed (null sender)",
      ["result"],
    ),
    apiErrors: registry.counter<"call">(
      "smtpgate_relay_api_errors_total",
      "Decision API calls that failed (unreachable, timeout, HTTP error, malformed answer) by call",
      ["call"],
    ),
    upstreamErrors: registry.counter(
      "smtpgate_relay_upstream_errors_total",
      "Upstream transactions that failed without a reply from the upstream (connect, TLS, timeout, connection lost) or with 421",
    ),
    policyRefreshFailures: registry.counter(
      "smtpgate_relay_policy_refresh_failures_total",
      "Failed refreshes of the listener policy (the last good copy stays in force)",
    ),
    deadlineCloses: registry.counter<"deadline">(
      "smtpgate_relay_deadline_closes_total",
      "Sessions closed with 421 4.4.2 for passing a slow-client deadline: command (line), data, session",
      ["deadline"],
    ),
    decisionSeconds: registry.histogram<"call">(
      "smtpgate_relay_decision_seconds",
      "Latency of decision API calls in seconds, failures included",
      ["call"],
      DECISION_BUCKETS,
    ),
  };
  // Series with a fixed label set are exposed from the start, so that rate() sees their first increment.
  for (const method of ["certificate", "password"])
    for (const result of ["success", "failure", "tempfail"]) metrics.auth.inc({ method, result }, 0);
  for (const result of ["relayed", "refused", "tempfail", "too-big"]) metrics.messages.inc({ result }, 0);
  for (const result of ["sent", "failed", "refused", "suppressed"]) metrics.dsn.inc({ result }, 0);
  for (const call of ["tls", "auth", "policy"]) metrics.apiErrors.inc({ call }, 0);
  for (const call of ["tls", "auth"]) metrics.decisionSeconds.touch({ call });
  for (const deadline of ["command", "data", "session"]) metrics.deadlineCloses.inc({ deadline }, 0);
  metrics.messageBytes.inc(undefined, 0);
  metrics.upstreamErrors.inc(undefined, 0);
  metrics.policyRefreshFailures.inc(undefined, 0);
  metrics.sessionsActive.inc(undefined, 0);
  return metrics;
}

export type RelayMetrics = ReturnType<typeof createRelayMetrics>;
