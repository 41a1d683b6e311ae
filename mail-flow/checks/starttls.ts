/**
 * STARTTLS (or the implicit TLS handshake), after the handshake and before the certificate goes to the decision
 * API. What the API answers about the certificate is its verdict (its `smtp` reply), not a check of ours.
 */
import type { Check } from "../stage.ts";
import { shuttingDown } from "./session.ts";

export interface StartTlsFacts {
  readonly shuttingDown: boolean;
}

export const STARTTLS_CHECKS: readonly Check<StartTlsFacts>[] = [{ name: "shutting-down", test: shuttingDown }];
