/**
 * The fronts as an edge process: the sockets of its own `fronts:` section, deciding through the decision API over
 * HTTP (contract/api-client.ts), so that a Postfix at the edge can use an API deployed anywhere, Workers included.
 *
 *   smtpgate fronts --config /etc/smtpgate/edge.yaml
 *
 *   api: { url: "https://smtpgate.example.com", token: { env: SMTPGATE_TOKEN } }
 *   fronts:
 *     dovecotSasl: [{ listen: "127.0.0.1:12345", listener: password }]
 */
import { z } from "zod";
import { ApiClient } from "../contract/api-client.ts";
import { apiClientConfigSchema } from "../contract/api-client-config.ts";
import { ListenerPolicyHolder } from "../contract/listener-policy-holder.ts";
import { frontsSchema } from "../contract/fronts-config.ts";
import { parseDocument, validateDocument } from "../lib/config/document.ts";
import { resolveSecretRef, type Environment } from "../lib/config/secret-ref.ts";
import type { Logger } from "../lib/json-lines.ts";
import { readConfigText } from "../lib/node/read-config-file.ts";
import { startFronts, type RunningFronts } from "./start-fronts.ts";

export const edgeFrontsConfigSchema = z.strictObject({
  api: apiClientConfigSchema({
    maxTimeoutMs: 9_000,
    whenSlow: "a slower API resets the connection (454); Postfix itself waits 10 s",
    refreshes: "the policy servers' GET /v1/listeners/{name}",
  }),
  fronts: frontsSchema,
});

export type EdgeFrontsConfig = z.output<typeof edgeFrontsConfigSchema>;

/** Reads and validates an edge process's file; throws ConfigError naming every problem. */
export async function readEdgeFrontsConfig(path: string): Promise<EdgeFrontsConfig> {
  const document = parseDocument(await readConfigText(path), path, "api and fronts");
  return validateDocument(edgeFrontsConfigSchema, document, path);
}

export async function startEdgeFronts(
  config: EdgeFrontsConfig,
  source: string,
  env: Environment,
  log: Logger,
): Promise<RunningFronts> {
  const decider = new ApiClient({
    url: config.api.url,
    token: resolveSecretRef(config.api.token, env, "api.token", source),
    timeoutMs: config.api.timeoutMs,
    connections: config.api.connections,
  });
  // The policy servers match clients in their listener's host access table, fetched like the relay's.
  const policies = new Map<string, ListenerPolicyHolder>();
  const stopRefreshing = (): void => policies.forEach((holder) => holder.stopRefreshing());
  try {
    for (const { listener } of config.fronts.postfixPolicy) {
      if (policies.has(listener)) continue;
      const holder = new ListenerPolicyHolder(decider, listener, log);
      await holder.load();
      holder.startRefreshing(config.api.policyRefreshSeconds);
      policies.set(listener, holder);
    }
    const running = await startFronts(config.fronts, decider, log, (name) => policies.get(name)?.policy ?? null);
    return {
      listening: running.listening,
      close: async () => {
        stopRefreshing();
        await running.close();
        await decider.close();
      },
    };
  } catch (error) {
    stopRefreshing();
    await decider.close();
    throw error;
  }
}
