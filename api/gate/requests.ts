/**
 * What the gate is asked and what it answers: the requests of each decision kind (already validated by the
 * contract's schemas) and the gate's result, a decision or the field the request got wrong.
 */
import type { CachePolicy, CacheStats } from "../cache/decision-cache.ts";
import type { CertificateFacts } from "../core/certificate-facts.ts";
import type { SmtpAuthCredentials } from "../core/smtp-auth.ts";
import type { Decision } from "../core/verdict.ts";

export interface PresentedCertificate {
  /** base64 DER, leaf first. */
  chain: string[];
}

export interface AuthRequest extends SmtpAuthCredentials {
  listener: string;
  mechanism: "PLAIN" | "LOGIN";
  /** The certificate the client presented at STARTTLS (null: none), so AUTH is judged by the same profile rules. */
  certificate?: PresentedCertificate | null | undefined;
  /** The SMTP client, for the brute-force limiter (absent: not limited, e.g. smtpgate test-auth). */
  client?: { ip: string } | undefined;
}

export interface TlsRequest {
  listener: string;
  certificate: PresentedCertificate | null;
}

/** A certificate an MTA verified, known by the facts it passes on (api/core/certificate-facts.ts). */
export interface CertificateFactsRequest {
  listener: string;
  certificate: CertificateFacts;
}

/** A login an MTA authenticated (api/core/identity.ts). */
export interface IdentityRequest {
  listener: string;
  identity: string;
}

export type GateResult = { ok: true; decision: Decision } | { ok: false; field: string; problem: string };

/** One auth profile's decision cache, for GET /v1/cache and the metrics. */
export interface ProfileCacheStats extends CacheStats {
  /** `auth`: SMTP AUTH decisions of an ldap profile; `certificate`: certificate outcomes of a certificate profile. */
  kind: "auth" | "certificate";
  enabled: boolean;
  policy: CachePolicy;
}
