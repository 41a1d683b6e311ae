// The part of @cloudflare/vitest-pool-workers' "cloudflare:test" module these tests use, typed without
// @cloudflare/workers-types (whose globals clash with @types/node in this single-tsconfig project).
declare module "cloudflare:test" {
  import type { ExecutionContext } from "hono";

  /** The bindings of the Worker under test (miniflare options over wrangler.toml). */
  export const env: Record<string, unknown>;
  /** The Worker's default export, called like a deployed Worker. */
  export const SELF: { fetch(input: string | Request, init?: RequestInit): Promise<Response> };
  export function createExecutionContext(): ExecutionContext;
  export function waitOnExecutionContext(ctx: ExecutionContext): Promise<void>;
  /** Runs `callback` inside the Durable Object `stub` points to, with its instance and state. */
  export function runInDurableObject<R>(stub: object, callback: (instance: unknown, state: unknown) => R): Promise<R>;
  /** Runs the object's pending alarm now; whether there was one. */
  export function runDurableObjectAlarm(stub: object): Promise<boolean>;
  /** Tears down the object's running instance (its memory), keeping its durable storage. */
  export function evictDurableObject(stub: object): Promise<void>;
}
