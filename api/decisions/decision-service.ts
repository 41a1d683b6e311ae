/**
 * From a validated decision request to the verdict, with its log line and its metrics: the one place where a
 * decision becomes a verdict, whoever asked. The HTTP routes (api/http/app.ts) and the in-process Decider that a
 * front in the same process uses both go through it, so their verdicts, log lines and counters are the same.
 */
import type { DecisionContext } from "../../contract/decider.ts";
import type {
  AuthRequestBody,
  CertificateFactsRequestBody,
  IdentityRequestBody,
  TlsRequestBody,
} from "../../contract/requests.ts";
import type { Verdict } from "../../contract/verdict.ts";
import type { Gate, GateResult } from "../gate/gate.ts";
import type { Decision } from "../core/verdict.ts";
import type { ApiMetrics, DecisionKind } from "../metrics/api-metrics.ts";
import type { Logger, LogRecord } from "../../lib/json-lines.ts";

export type { Logger, LogRecord };

/** A verdict, or the gate's complaint about the request (the field it names). */
export type Decided = { ok: true; verdict: Verdict } | { ok: false; field: string; problem: string };

export interface DecisionServiceOptions {
  gate: Gate;
  metrics: ApiMetrics;
  log: Logger;
  newDecisionId?: () => string;
}

/** Longest user name copied into a log line; the rest is cut (a 10 kB injection attempt needs no 10 kB log). */
const LOGGED_USERNAME_MAX = 128;

export class DecisionService {
  readonly #options: DecisionServiceOptions;
  readonly #newDecisionId: () => string;

  constructor(options: DecisionServiceOptions) {
    this.#options = options;
    this.#newDecisionId = options.newDecisionId ?? (() => crypto.randomUUID());
  }

  async decideTls(request: TlsRequestBody, context: DecisionContext = {}): Promise<Decided> {
    const started = performance.now();
    const result = await this.#options.gate.decideTls(request);
    return this.#answer("tls", started, result, (decision, verdict) => ({
      ...decisionLog("tls", request, context, decision, verdict, started),
      certificates: request.certificate?.chain.length ?? 0,
    }));
  }

  async decideAuth(request: AuthRequestBody, context: DecisionContext = {}): Promise<Decided> {
    const started = performance.now();
    const result = await this.#options.gate.decideAuth(request);
    if (result.ok && result.decision.bruteForce) this.#bruteForceBlock(request, result.decision.bruteForce);
    return this.#answer("auth", started, result, (decision, verdict) => ({
      ...decisionLog("auth", request, context, decision, verdict, started),
      mechanism: request.mechanism,
      user: loggedUsername(request.username),
    }));
  }

  async decideCertificateFacts(request: CertificateFactsRequestBody, context: DecisionContext = {}): Promise<Decided> {
    const started = performance.now();
    const result = await this.#options.gate.decideCertificateFacts(request);
    return this.#answer("certificate-facts", started, result, (decision, verdict) => ({
      ...decisionLog("certificate-facts", request, context, decision, verdict, started),
      certificate: request.certificate,
    }));
  }

  async decideIdentity(request: IdentityRequestBody, context: DecisionContext = {}): Promise<Decided> {
    const started = performance.now();
    const result = await this.#options.gate.decideIdentity(request);
    return this.#answer("identity", started, result, (decision, verdict) => ({
      ...decisionLog("identity", request, context, decision, verdict, started),
      user: loggedUsername(request.identity),
    }));
  }

  /**
   * One line per blocked (or, in observe mode, would-be blocked) attempt, for fail2ban: the fields before
   * `clientIp` are fixed words, and the user name comes after it, so a crafted name cannot name another address.
   */
  #bruteForceBlock(request: AuthRequestBody, block: NonNullable<Decision["bruteForce"]>): void {
    const mode = block.enforced ? "enforce" : "observe";
    this.#options.metrics.bruteForceBlock(request.listener, block.bucket, mode);
    this.#options.log({
      level: "warn",
      msg: "brute-force block",
      listener: request.listener,
      bucket: block.bucket,
      mode,
      retryAfter: block.retryAfterSeconds,
      clientIp: request.client.ip,
      user: loggedUsername(request.username),
    });
  }

  #answer(
    kind: DecisionKind,
    started: number,
    result: GateResult,
    logLine: (decision: Decision, verdict: Verdict) => LogRecord,
  ): Decided {
    if (!result.ok) return result;
    this.#options.metrics.decision(kind, result.decision, (performance.now() - started) / 1000);
    const verdict = toVerdict(result.decision, this.#newDecisionId());
    this.#options.log(logLine(result.decision, verdict));
    return { ok: true, verdict };
  }
}

function loggedUsername(username: string): string {
  return username.length > LOGGED_USERNAME_MAX
    ? `${username.slice(0, LOGGED_USERNAME_MAX)}…(${username.length} chars)`
    : username;
}

function toVerdict(decision: Decision, decisionId: string): Verdict {
  return {
    verdict: decision.verdict,
    authenticated: decision.authenticated,
    method: decision.method,
    identity: decision.identity,
    dn: decision.dn,
    temporary: decision.temporary,
    reason: decision.reason,
    retryAfter: decision.retryAfter,
    addresses: decision.addresses,
    smtp: decision.smtp,
    close: decision.close,
    profile: decision.profile,
    decisionId,
  };
}

/**
 * One line per decision: what an operator needs to answer "why was alice refused?". Never the password. A tempfail
 * is a `warn` (the directory or a revocation source needs someone's attention); a deny names the query it asked.
 */
function decisionLog(
  kind: DecisionKind,
  request: AuthRequestBody | TlsRequestBody | CertificateFactsRequestBody | IdentityRequestBody,
  context: DecisionContext,
  decision: Decision,
  verdict: Verdict,
  started: number,
): LogRecord {
  return {
    level: verdict.verdict === "tempfail" ? "warn" : "info",
    msg: "decision",
    kind,
    requestId: context.requestId,
    decisionId: verdict.decisionId,
    listener: request.listener,
    session: request.session,
    clientIp: request.client.ip,
    helo: request.client.helo,
    tls: "tls" in request && request.tls ? `${request.tls.version} ${request.tls.cipher}` : null,
    profile: verdict.profile,
    method: verdict.method,
    verdict: verdict.verdict,
    reason: verdict.reason,
    identity: verdict.identity,
    temporary: verdict.temporary,
    smtp: verdict.smtp?.code ?? null,
    dn: verdict.dn,
    detail: decision.detail,
    ...(verdict.verdict === "deny" && decision.query
      ? { filter: decision.query.filter, base: decision.query.baseDn }
      : {}),
    cache: decision.cache,
    durationMs: Math.round((performance.now() - started) * 10) / 10,
  };
}
