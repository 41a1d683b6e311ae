/**
 * The host access table compiled for lookups: sender groups matched top-down by client IP, first match wins
 * (docs/configuration.md). Compiled into node:net BlockLists once per policy version, so a lookup costs a few
 * BlockList checks, not a parse. The relay matches at connect, the Postfix policy server per request.
 *
 *   const table = compileHostAccessTable(policy);
 *   table.match("192.0.2.7")   // { group: "internal", policyName: "RELAYED", policy: { ... } } or null
 */
import { BlockList, isIPv6 } from "node:net";
import type { ListenerPolicy, MailFlowPolicy } from "./listener-policy.ts";

/** The row of the host access table a client address matched, with the mail-flow policy it points at. */
export interface SenderGroupMatch {
  group: string;
  policyName: string;
  policy: MailFlowPolicy;
}

export interface HostAccessTable {
  /** The sender group of a client address: first match wins; null = no group (refuse). */
  match(address: string): SenderGroupMatch | null;
}

/** The API served a policy a front cannot enforce (a sender group naming no policy, an empty table). */
export class UnusablePolicyError extends Error {
  override name = "UnusablePolicyError";
}

/** Throws UnusablePolicyError for a sender group that names a policy the document does not hold. */
export function compileHostAccessTable(policy: ListenerPolicy): HostAccessTable {
  const groups = policy.hostAccessTable.map((group) => {
    const blocks = new BlockList();
    for (const entry of group.match) {
      const [address, prefix] = entry.split("/") as [string, string | undefined];
      const family = isIPv6(address) ? "ipv6" : "ipv4";
      if (prefix === undefined) blocks.addAddress(address, family);
      else blocks.addSubnet(address, Number(prefix), family);
    }
    const mailFlowPolicy = policy.mailFlowPolicies[group.policy];
    if (!mailFlowPolicy)
      throw new UnusablePolicyError(`sender group ${group.name} names an unknown policy ${group.policy}`);
    return { match: { group: group.name, policyName: group.policy, policy: mailFlowPolicy }, blocks };
  });
  return {
    match(address) {
      const family = isIPv6(address) ? "ipv6" : "ipv4";
      return groups.find(({ blocks }) => blocks.check(address, family))?.match ?? null;
    },
  };
}
