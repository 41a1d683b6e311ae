/**
 * What an operator sees and lifts of the brute-force buckets (`smtpgate blocks`, GET /v1/blocks, POST
 * /v1/addresses/clear): every bucket that is full under some listener's policy, read from the store's windows.
 * Not on the decision path; each listing reads every window once.
 *
 * A window's key names its bucket (api/core/brute-force.ts): `address:<prefix>`, `user:<generation>:<user>`,
 * `pair:<generation>:<user>:<prefix>`. A user or pair window under an older generation was flushed and is not
 * listed. A trusted pair is let through the address and user buckets whatever they hold; the listing does not say
 * which pairs are trusted.
 */
import {
  addressPrefix,
  BUCKET_KINDS,
  type BruteForcePolicy,
  type BucketKind,
  type LimiterStore,
} from "./brute-force.ts";

export interface ListedBlock {
  bucket: BucketKind;
  /** The network, e.g. `192.0.2.0/24` (address and pair buckets). */
  address: string | null;
  /** The name as typed, trimmed and lower-cased (user and pair buckets). */
  user: string | null;
  /** Each listener whose policy this bucket blocks, and for how long. */
  listeners: { listener: string; failures: number; retryAfterSeconds: number }[];
}

/** The parts of a window's key; null for a key that is not a bucket's. */
export function parseWindowKey(
  key: string,
): { bucket: BucketKind; generation: number | null; user: string | null; address: string | null } | null {
  const [kind, ...rest] = key.split(":");
  if (kind === "address") return { bucket: "address", generation: null, user: null, address: rest.join(":") };
  if (kind !== "user" && kind !== "pair") return null;
  const generation = Number(rest[0]);
  const tail = rest.slice(1).join(":");
  if (!Number.isInteger(generation) || tail === "") return null;
  if (kind === "user") return { bucket: "user", generation, user: tail, address: null };
  // addressPrefix writes IPv4 as a.b.c.d/n and IPv6 as all eight groups/n, so the prefix is found from the end.
  const prefix = /:((?:\d{1,3}\.){3}\d{1,3}\/\d{1,2}|(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\/\d{1,3})$/.exec(tail);
  if (!prefix) return null;
  return { bucket: "pair", generation, user: tail.slice(0, prefix.index), address: prefix[1] as string };
}

/** Every bucket full under at least one of the policies (listeners with mode off are left out). */
export async function listBlocks(
  store: LimiterStore,
  policies: readonly (readonly [string, BruteForcePolicy])[],
  now: number,
): Promise<ListedBlock[]> {
  if (!store.scan) throw new Error("this brute-force store cannot list its buckets");
  const active = policies.filter(([, policy]) => policy.mode !== "off");
  const listed: ListedBlock[] = [];
  for (const kind of BUCKET_KINDS) {
    const windows = await store.scan(`${kind}:`, now);
    const parsed = windows.flatMap((window) => {
      const parts = parseWindowKey(window.key);
      return parts ? [{ ...parts, times: window.times }] : [];
    });
    const users = [...new Set(parsed.flatMap((entry) => (entry.user === null ? [] : [entry.user])))];
    const current = new Map(users.map((user, i) => [user, i]));
    const generations = users.length > 0 ? await store.generations(users) : [];
    for (const entry of parsed) {
      if (entry.user !== null && generations[current.get(entry.user) as number] !== entry.generation) continue;
      const listeners = active.flatMap(([listener, policy]) => {
        const windowMs = policy[kind].windowSeconds * 1000;
        const counted = entry.times.filter((at) => at > now - windowMs);
        if (counted.length < policy[kind].limit) return [];
        const oldest = Math.min(...counted);
        return [
          {
            listener,
            failures: counted.length,
            retryAfterSeconds: Math.max(1, Math.ceil((oldest + windowMs - now) / 1000)),
          },
        ];
      });
      if (listeners.length > 0) listed.push({ bucket: kind, address: entry.address, user: entry.user, listeners });
    }
  }
  return listed;
}

/** Empties the address buckets of `ip` at every prefix length the policies use; the networks emptied. */
export async function clearAddress(
  store: LimiterStore,
  ip: string,
  policies: readonly (readonly [string, BruteForcePolicy])[],
): Promise<string[]> {
  if (!store.clear) throw new Error("this brute-force store cannot clear a bucket");
  const prefixes = [
    ...new Set(policies.map(([, policy]) => addressPrefix(ip, policy.ipv4PrefixLength, policy.ipv6PrefixLength))),
  ];
  await store.clear(prefixes.map((prefix) => `address:${prefix}`));
  return prefixes;
}
