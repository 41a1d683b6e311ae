// Facts for the stage checks' unit tests: a mail-flow policy with the schema's defaults, a session after TLS.
import { mailFlowPolicySchema, type MailFlowPolicy } from "../../contract/listener-policy.ts";
import type { SessionFacts } from "./session.ts";

export function policy(overrides: Partial<MailFlowPolicy> = {}): MailFlowPolicy {
  return mailFlowPolicySchema.parse({ behaviour: "accept", ...overrides });
}

export function session(overrides: Partial<SessionFacts> = {}): SessionFacts {
  return { policy: policy(), secure: true, identity: null, shuttingDown: false, ...overrides };
}
