/**
 * The Decider port: what every front (the edge relay, the protocol servers, the nginx endpoint) asks, and the only
 * way it asks. Two implementations: in-process over the gate (api/decisions/in-process-decider.ts) and over HTTP
 * (contract/api-client.ts). Both validate the request with the contract's schemas and answer the contract's
 * verdict, so a front cannot tell them apart.
 *
 * A rejected promise means "no answer" (the API unreachable, slow, confused, or the request malformed): the front
 * answers with a temporary failure, never an accept.
 */
import type { z } from "zod";
import type {
  authRequestSchema,
  certificateFactsRequestSchema,
  identityRequestSchema,
  tlsRequestSchema,
} from "./requests.ts";
import type { Verdict } from "./verdict.ts";

/** A request as a front builds it (optional fields may be left out). */
export type TlsRequest = z.input<typeof tlsRequestSchema>;
export type AuthRequest = z.input<typeof authRequestSchema>;
export type CertificateFactsRequest = z.input<typeof certificateFactsRequestSchema>;
export type IdentityRequest = z.input<typeof identityRequestSchema>;

/** Facts about the call, not part of the decision. */
export interface DecisionContext {
  /** Correlates the front's log line with the API's (the HTTP X-Request-Id). */
  requestId?: string;
}

export interface Decider {
  /** At STARTTLS (or implicit TLS): the client certificate chain, or its absence. */
  decideTls(request: TlsRequest, context?: DecisionContext): Promise<Verdict>;
  /** At AUTH: the credentials (and the STARTTLS certificate, for certificate profiles with AUTH fallback). */
  decideAuth(request: AuthRequest, context?: DecisionContext): Promise<Verdict>;
}

/**
 * The decisions about a client that the MTA itself has verified or authenticated (the Postfix policy server asks
 * them). A port beside Decider, implemented by the same two classes, so a front that needs neither stays as it is.
 */
export interface MtaFactsDecider {
  /**
   * A client certificate the MTA verified, as facts (fingerprints, common names): mapped by the certificate query
   * like a chain, with no path validation or revocation check of ours (a profile with `revocation` refuses it).
   */
  decideCertificateFacts(request: CertificateFactsRequest, context?: DecisionContext): Promise<Verdict>;
  /**
   * A login the MTA authenticated: allow (with the identity's addresses) when the entry exists and the allowance
   * query passes; deny `no-such-user` / `allowance-failed`; tempfail when the directory cannot answer.
   */
  decideIdentity(request: IdentityRequest, context?: DecisionContext): Promise<Verdict>;
}

/** The request was refused before any decision: a malformed call names the field. */
export class DecisionRefused extends Error {
  override name = "DecisionRefused";
  readonly problems: readonly { field: string; message: string }[];

  constructor(problems: readonly { field: string; message: string }[]) {
    super(problems.map((problem) => `${problem.field}: ${problem.message}`).join("; "));
    this.problems = problems;
  }
}
