/** What every hook of the relay works with: built once by startRelay (relay.ts), shared by both listeners. */
import type { SMTPServerSession } from "smtp-server";
import type { Decider } from "../contract/decider.ts";
import type { RelayConfig } from "./config.ts";
import type { Delivery } from "./delivery.ts";
import type { ListenerPolicyHolder } from "../contract/listener-policy-holder.ts";
import type { Logger } from "./log.ts";
import type { RelayMetrics } from "./metrics.ts";
import type { SessionRegistry } from "./session.ts";

export interface RelayContext {
  readonly config: RelayConfig;
  readonly policy: ListenerPolicyHolder;
  /** The decision API (contract/api-client.ts), or any other Decider (a test's). */
  readonly decider: Decider;
  readonly metrics: RelayMetrics;
  readonly sessions: SessionRegistry;
  readonly delivery: Delivery;
  readonly log: Logger;
  /** True once close() began: no new transaction, AUTH or STARTTLS from then on. */
  isShuttingDown(): boolean;
  /** Closes a session's connection after its reply (whichever listener it came in on). */
  closeSession(session: SMTPServerSession): void;
}
