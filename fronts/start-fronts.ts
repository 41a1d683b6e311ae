/**
 * Starts every socket of a `fronts:` section over one Decider: in-process beside the API (`smtpgate serve`) or
 * over HTTP at the edge (`smtpgate fronts`). One protocol adapter, two deciders.
 */
import type { Decider } from "../contract/decider.ts";
import type { FrontsConfig } from "../contract/fronts-config.ts";
import type { Logger } from "../lib/json-lines.ts";
import { createDovecotSaslServer, type DovecotSaslServer } from "./dovecot-sasl/index.ts";

export interface RunningFronts {
  /** Where each socket listens, e.g. `dovecot-sasl 127.0.0.1:12345 (password)`. */
  listening: string[];
  /** Stops every socket; connections are reset once their requests in flight are answered. */
  close(): Promise<void>;
}

export async function startFronts(config: FrontsConfig, decider: Decider, log: Logger): Promise<RunningFronts> {
  const servers: DovecotSaslServer[] = [];
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
  } catch (error) {
    await close();
    throw error;
  }
  return { listening, close };
}
