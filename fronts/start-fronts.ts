/**
 * Starts every socket of a `fronts:` section over one Decider: in-process beside the API (`smtpgate serve`) or
 * over HTTP at the edge (`smtpgate fronts`). One protocol adapter, two deciders.
 */
import type { Decider, MtaFactsDecider } from "../contract/decider.ts";
import type { FrontsConfig } from "../contract/fronts-config.ts";
import type { Logger } from "../lib/json-lines.ts";
import { createDovecotSaslServer, type DovecotSaslServer } from "./dovecot-sasl/index.ts";
import { currentHostAccessTable, type ListenerPolicySource } from "./postfix-policy/host-access.ts";
import { createPostfixPolicyServer, type PostfixPolicyServer } from "./postfix-policy/index.ts";

export interface RunningFronts {
  /** Where each socket listens, e.g. `dovecot-sasl 127.0.0.1:12345 (password)`. */
  listening: string[];
  /** Stops every socket; connections are reset once their requests in flight are answered. */
  close(): Promise<void>;
}

/**
 * `listenerPolicy`: each listener's policy as it is now (in-process: the live gate's; at the edge: fetched from
 * the API and refreshed), for the policy servers' host access table; without it, none can start.
 */
export async function startFronts(
  config: FrontsConfig,
  decider: Decider & MtaFactsDecider,
  log: Logger,
  listenerPolicy?: ListenerPolicySource,
): Promise<RunningFronts> {
  const servers: (DovecotSaslServer | PostfixPolicyServer)[] = [];
  const listening: string[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(servers.map((server) => server.close()));
  };
  try {
    for (const front of config.dovecotSasl) {
      const server = createDovecotSaslServer({ decider, listener: front.listener, log });
      servers.push(server);
      const where = await server.listen(front.listen);
      listening.push(`dovecot-sasl ${where} (${front.listener})`);
      log({ level: "info", msg: "listening", front: "dovecot-sasl", address: where, listener: front.listener });
    }
    for (const front of config.postfixPolicy) {
      if (!listenerPolicy) throw new Error("the Postfix policy server needs the listeners' policies");
      const server = createPostfixPolicyServer({
        listener: front.listener,
        listen: front.listen,
        decider,
        hostAccessTable: currentHostAccessTable(front.listener, listenerPolicy),
        log,
      });
      servers.push(server);
      listening.push(`postfix-policy ${await server.listen()} (${front.listener})`);
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { listening, close };
}
