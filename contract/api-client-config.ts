/**
 * The `api:` section of a front at the edge (the relay's relay.yaml, the protocol fronts' edge.yaml): where the
 * decision API is, the token the front sends, and how long it waits. One schema, so the fronts cannot drift.
 */
import { z } from "zod";
import { secretRef } from "../lib/config/secret-ref.ts";

export interface ApiClientConfigOptions {
  /** The longest timeout the front allows (a caller waiting on the front gives up sooner). */
  maxTimeoutMs: number;
  /** What a slower API means for the front's own client, for the reference. */
  whenSlow: string;
  /** What the front does with the listener policies it refreshes. */
  refreshes: string;
}

export function apiClientConfigSchema(options: ApiClientConfigOptions) {
  return z.strictObject({
    url: z.url({ protocol: /^https?$/ }).describe("the decision API, e.g. http://127.0.0.1:8787"),
    token: secretRef,
    timeoutMs: z
      .number()
      .int()
      .min(100)
      .max(options.maxTimeoutMs)
      .default(3_000)
      .describe(
        `the deadline of a whole call to the API, its retry on a connection error included; ${options.whenSlow}`,
      ),
    connections: z.number().int().min(1).max(1024).default(32).describe("HTTP connections kept to the API"),
    policyRefreshSeconds: z
      .number()
      .int()
      .min(1)
      .max(86_400)
      .default(60)
      .describe(`how often to ask the API for the listener's policy again (${options.refreshes})`),
  });
}
