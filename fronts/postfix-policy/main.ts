/**
 * The Node composition of the policy servers: one per `fronts.postfixPolicy` entry of the API's configuration,
 * started by the Node runtime beside the HTTP API (api/runtime/node/main.ts) with its in-process Decider, so the
 * decisions are the API's own (same log lines, same metrics, no HTTP hop). The edge process (edge.ts) is the same
 * server over the HTTP API instead.
 */
import type { Decider } from "../../contract/decider.ts";
import { compileHostAccessTable, type HostAccessTable } from "../../contract/host-access-table.ts";
import type { ListenerPolicy } from "../../contract/listener-policy.ts";
import type { Logger } from "../../lib/json-lines.ts";
import { createPostfixPolicyServer, type PolicySocket, type PostfixPolicyServer } from "./index.ts";

export interface PolicyFrontsContext {
  config: { fronts: { postfixPolicy: readonly { listener: string; listen: PolicySocket }[] } };
  decider: Pick<Decider, "decideCertificateFacts" | "decideIdentity">;
  /** The listener's policy under the configuration being served (a reload may change it). */
  listenerPolicy(name: string): ListenerPolicy | null;
  log: Logger;
}

export async function startPostfixPolicyFronts(context: PolicyFrontsContext): Promise<{ close(): Promise<void> }> {
  const servers: PostfixPolicyServer[] = [];
  try {
    for (const front of context.config.fronts.postfixPolicy) {
      const server = createPostfixPolicyServer({
        listener: front.listener,
        listen: front.listen,
        decider: context.decider,
        hostAccessTable: currentHostAccessTable(front.listener, context.listenerPolicy),
        log: context.log,
      });
      await server.listen();
      servers.push(server);
    }
  } catch (error) {
    await Promise.all(servers.map((server) => server.close()));
    throw error;
  }
  return { close: async () => void (await Promise.all(servers.map((server) => server.close()))) };
}

/** The listener's table, compiled again only when its policy document changed (a reload). */
function currentHostAccessTable(
  listener: string,
  listenerPolicy: PolicyFrontsContext["listenerPolicy"],
): () => HostAccessTable {
  let compiled: { policy: ListenerPolicy; table: HostAccessTable } | null = null;
  const nothing: HostAccessTable = { match: () => null };
  return function hostAccessTable() {
    const policy = listenerPolicy(listener);
    // A listener a reload removed: every client is refused (Access denied) until the restart.
    if (!policy) return nothing;
    if (compiled === null || JSON.stringify(compiled.policy) !== JSON.stringify(policy))
      compiled = { policy, table: compileHostAccessTable(policy) };
    return compiled.table;
  };
}
