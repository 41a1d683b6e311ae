/**
 * The brute-force limiter's configuration (api/core/brute-force.ts): each listener's `bruteForce` policy, and the
 * one `bruteForceStore` its buckets live in. The defaults hold without tuning: 200 wrong passwords from one
 * address, 200 guesses at one user from 200 addresses or from one IPv6 /64 are each stopped long before they end,
 * while one stale password retried from a phone counts once.
 */
import { z } from "zod";
import { secretRef } from "../../lib/config/secret-ref.ts";

const bucket = (limit: number, windowSeconds: number, what: string) =>
  z
    .strictObject({
      limit: z
        .number()
        .int()
        .min(1)
        .max(100_000)
        .default(limit)
        .describe(`distinct failures in the window at which ${what} is blocked`),
      windowSeconds: z
        .number()
        .int()
        .min(1)
        .max(86_400)
        .default(windowSeconds)
        .describe("the sliding window: a failure counts for this long after it happened"),
    })
    .default({ limit, windowSeconds })
    .describe(`${what}: blocked at \`limit\` distinct failures within \`windowSeconds\``);

export const bruteForcePolicySchema = z
  .strictObject({
    mode: z
      .enum(["enforce", "observe", "off"])
      .default("enforce")
      .describe(
        "enforce: a blocked attempt gets tempfail (rate-limited, 454 4.7.0, retryAfter) without LDAP traffic; observe: it is logged and counted as blocked, then decided as usual; off: no limiter",
      ),
    ipv4PrefixLength: z
      .number()
      .int()
      .min(8)
      .max(32)
      .default(32)
      .describe("IPv4 clients are counted by this network (32: each address)"),
    ipv6PrefixLength: z
      .number()
      .int()
      .min(16)
      .max(128)
      .default(64)
      .describe("IPv6 clients are counted by this network (64: one client usually owns a /64)"),
    address: bucket(50, 900, "a client network (a failure is a distinct user and password)"),
    user: bucket(20, 900, "a user name, trimmed and lower-cased (a failure is a distinct network and password)"),
    pair: bucket(10, 900, "one user from one network (a failure is a distinct password)"),
    trustSeconds: z
      .number()
      .int()
      .min(0)
      .max(90 * 86_400)
      .default(7 * 86_400)
      .describe(
        "after a success, the user's network is trusted this long: the address and user buckets do not block it (the pair bucket still does)",
      ),
  })
  .default({
    mode: "enforce",
    ipv4PrefixLength: 32,
    ipv6PrefixLength: 64,
    address: { limit: 50, windowSeconds: 900 },
    user: { limit: 20, windowSeconds: 900 },
    pair: { limit: 10, windowSeconds: 900 },
    trustSeconds: 7 * 86_400,
  })
  .describe("brute-force control of SMTP AUTH on this listener (docs/brute-force.md)");

export const bruteForceStoreSchema = z
  .strictObject({
    type: z
      .enum(["memory", "redis", "durable-object"])
      .default("memory")
      .describe(
        "memory: this process only (one API process); redis: shared by every replica (Node); durable-object: Durable Objects shared by every isolate (Workers only)",
      ),
    url: z
      .string()
      .regex(/^rediss?:\/\/[^@/]+(\/\d+)?$/, "redis://HOST:PORT[/DB] or rediss://...; the password goes in password")
      .optional()
      .describe("type redis: the server, redis://HOST:PORT[/DB] (rediss:// for TLS)"),
    password: secretRef.optional().describe("type redis: the AUTH password"),
    binding: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "the name of a binding: letters, digits and _")
      .optional()
      .describe(
        "type durable-object: the Worker's Durable Object namespace binding of class BruteForceObject (wrangler.toml [[durable_objects.bindings]])",
      ),
    keyPrefix: z
      .string()
      .max(64)
      .default("smtpgate:bf:")
      .describe("type redis: every key starts with this (several deployments can share one server)"),
    shards: z
      .number()
      .int()
      .min(1)
      .max(256)
      .default(1)
      .describe(
        "type durable-object: how many objects hold the buckets, each user's and each network's in one of them (a decision talks to at most two); changing it starts every bucket, trust and flush afresh",
      ),
    commandTimeoutMs: z
      .number()
      .int()
      .min(10)
      .max(10_000)
      .default(250)
      .describe("type redis and durable-object: a call not answered in this time is a store failure"),
    onStoreFailure: z
      .enum(["allow", "tempfail"])
      .default("allow")
      .describe(
        "when the store cannot be read: allow decides without the limiter (the directory still checks every password; nothing is cached), tempfail answers 454",
      ),
  })
  .superRefine((store, ctx) => {
    if (store.type === "redis" && store.url === undefined)
      ctx.addIssue({ code: "custom", path: ["url"], message: "type redis needs a url" });
    if (store.type === "durable-object" && store.binding === undefined)
      ctx.addIssue({
        code: "custom",
        path: ["binding"],
        message: "type durable-object needs the binding of its Durable Object namespace",
      });
  })
  .default({ type: "memory", keyPrefix: "smtpgate:bf:", shards: 1, commandTimeoutMs: 250, onStoreFailure: "allow" })
  .describe("where the brute-force buckets and each user's flush generation live");

export type BruteForcePolicyConfig = z.output<typeof bruteForcePolicySchema>;
export type BruteForceStoreConfig = z.output<typeof bruteForceStoreSchema>;
