/**
 * The Decider in-process: a front running in the API's process asks the gate directly, with the same request
 * validation, verdicts, log lines and metrics as over HTTP (contract/api-client.ts is the other Decider).
 */
import {
  DecisionRefused,
  type AuthRequest,
  type CertificateFactsRequest,
  type Decider,
  type MtaFactsDecider,
  type DecisionContext,
  type IdentityRequest,
  type TlsRequest,
} from "../../contract/decider.ts";
import {
  authRequestSchema,
  certificateFactsRequestSchema,
  identityRequestSchema,
  tlsRequestSchema,
} from "../../contract/requests.ts";
import type { Verdict } from "../../contract/verdict.ts";
import type { Decided, DecisionService } from "./decision-service.ts";
import type { z } from "zod";
import { validate } from "../../lib/validation/problems.ts";

export class InProcessDecider implements Decider, MtaFactsDecider {
  readonly #service: DecisionService;

  constructor(service: DecisionService) {
    this.#service = service;
  }

  async decideTls(request: TlsRequest, context?: DecisionContext): Promise<Verdict> {
    return verdictOf(await this.#service.decideTls(parse(tlsRequestSchema, request), context));
  }

  async decideAuth(request: AuthRequest, context?: DecisionContext): Promise<Verdict> {
    return verdictOf(await this.#service.decideAuth(parse(authRequestSchema, request), context));
  }

  async decideCertificateFacts(request: CertificateFactsRequest, context?: DecisionContext): Promise<Verdict> {
    return verdictOf(
      await this.#service.decideCertificateFacts(parse(certificateFactsRequestSchema, request), context),
    );
  }

  async decideIdentity(request: IdentityRequest, context?: DecisionContext): Promise<Verdict> {
    return verdictOf(await this.#service.decideIdentity(parse(identityRequestSchema, request), context));
  }
}

/** The same validation and problem wording as a malformed HTTP call (400). */
function parse<S extends z.ZodType>(schema: S, request: unknown): z.output<S> {
  const checked = validate(schema, request, { showValues: false });
  if (checked.ok) return checked.value;
  throw new DecisionRefused(checked.problems.map((problem) => ({ field: problem.path, message: problem.message })));
}

function verdictOf(decided: Decided): Verdict {
  if (!decided.ok) throw new DecisionRefused([{ field: decided.field, message: decided.problem }]);
  return decided.verdict;
}
