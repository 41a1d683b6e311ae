/**
 * The brute-force limiter's operator routes (docs/brute-force.md), behind the API token like every /v1 route:
 *
 *   POST /v1/users/flush      drops one user's cached decisions, blocks and trust (`{"user": "alice"}`), everywhere
 *   GET  /v1/blocks           every bucket that is full under some listener's policy, and for how long
 *   POST /v1/addresses/clear  empties one address's bucket (`{"address": "192.0.2.7"}`) at each policy's prefix
 *
 * Through the brute-force store: with Redis, every replica sharing it sees a flush or a clear at once.
 */
import type { Context, Hono } from "hono";
import type { Gate } from "../gate/gate.ts";
import type { Logger } from "../decisions/decision-service.ts";
import { addressClearRequestSchema, userFlushRequestSchema } from "../../contract/requests.ts";
import { problem } from "./problem.ts";
import { parseBody } from "./request-body.ts";

type Env = { Variables: { requestId: string } };

export function addBruteForceRoutes(app: Hono<Env>, gate: Gate, log: Logger): void {
  const storeFailed = (c: Context<Env>, what: string, error: unknown): Response => {
    log({ level: "error", msg: `${what} failed`, requestId: c.get("requestId"), error: String(error) });
    return problem(c, 503, "store-unavailable", "Brute-force store unavailable", `the ${what} did not happen: retry`);
  };

  app.post("/v1/users/flush", async (c) => {
    const body = await parseBody(c, userFlushRequestSchema);
    if (!body.ok) return body.response;
    const limiter = gate.bruteForce;
    if (!limiter) return c.json({ user: body.value.user, generation: null });
    let generation: number;
    try {
      generation = await limiter.flushUser(body.value.user);
    } catch (error) {
      return storeFailed(c, "user flush", error);
    }
    log({ level: "info", msg: "user flushed", requestId: c.get("requestId"), user: body.value.user, generation });
    return c.json({ user: body.value.user, generation });
  });

  app.get("/v1/blocks", async (c) => {
    const limiter = gate.bruteForce;
    if (!limiter) return c.json({ blocks: [] });
    try {
      return c.json({ blocks: await limiter.blocks(gate.listenerNames()) });
    } catch (error) {
      return storeFailed(c, "block listing", error);
    }
  });

  app.post("/v1/addresses/clear", async (c) => {
    const body = await parseBody(c, addressClearRequestSchema);
    if (!body.ok) return body.response;
    const limiter = gate.bruteForce;
    if (!limiter) return c.json({ address: body.value.address, cleared: [] });
    let cleared: string[];
    try {
      cleared = await limiter.clearAddress(body.value.address, gate.listenerNames());
    } catch (error) {
      return storeFailed(c, "address clear", error);
    }
    log({ level: "info", msg: "address cleared", requestId: c.get("requestId"), address: body.value.address, cleared });
    return c.json({ address: body.value.address, cleared });
  });
}
