/**
 * The host access table of a listener whose policy may change under a running server (a SIGHUP reload in-process,
 * a refresh at the edge): compiled again only when the policy document changed.
 */
import { compileHostAccessTable, type HostAccessTable } from "../../contract/host-access-table.ts";
import type { ListenerPolicy } from "../../contract/listener-policy.ts";

export type ListenerPolicySource = (name: string) => ListenerPolicy | null;

/** The listener's table, compiled again only when its policy document changed (a reload). */
export function currentHostAccessTable(listener: string, listenerPolicy: ListenerPolicySource): () => HostAccessTable {
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
