/**
 * smtpgate decision API on Cloudflare Workers: the same Hono app, configuration and verdicts as the Node entry
 * point (api/runtime/node/main.ts); only this file and the directory adapter differ.
 *
 *   npm run worker:dev       wrangler dev (local workerd)
 *   npm run worker:deploy    wrangler deploy
 *
 * Bindings (see wrangler.toml and infra/README.md): SMTPGATE_CONFIG (the configuration, a JSON var or JSON/YAML
 * text), a Workers secret for each `{ env: NAME }` in it (bind passwords, API tokens), and the brute-force store's
 * Durable Object namespace (BRUTE_FORCE, class BruteForceObject).
 *
 * Everything is built on the first request an isolate serves and kept for the isolate's life. A configuration
 * that is invalid, or asks for something workerd cannot do, is not a crash loop: every request gets a 500
 * problem+json naming each offending path and why, and the log gets the same once.
 */
import type { ExecutionContext } from "hono";
import { ConfigError, type ConfigProblem } from "../../../lib/config/config-error.ts";
import { PROBLEM_CONTENT_TYPE } from "../../http/problem.ts";
import { runWithDirectoryScope } from "../../ldap/workers-directory.ts";
import { CONFIG_BINDING, CONFIG_SOURCE, type WorkerEnv } from "./config.ts";
import { buildWorkerRuntime, consoleLogger, type WorkerRuntime } from "./runtime.ts";

/** The brute-force store's Durable Object (`bruteForceStore.type: durable-object`), bound in wrangler.toml. */
export { BruteForceObject } from "./brute-force-object.ts";

/** Cloudflare's ExecutionContext, as Hono types it (the project compiles against Node's types, not workers-types). */
export type WorkerContext = ExecutionContext;

type Built = { ok: true; runtime: WorkerRuntime } | { ok: false; response: () => Response };

/** Builds by env object first (stable within an isolate), by content second (tests pass their own envs). */
const byEnv = new WeakMap<object, Promise<Built>>();
const byContent = new Map<string, Promise<Built>>();
/** Distinct configurations one isolate keeps built at most (only tests ever see more than one). */
const MAX_BUILDS = 8;

function runtimeFor(env: WorkerEnv): Promise<Built> {
  const known = byEnv.get(env);
  if (known) return known;
  const key = fingerprint(env);
  let built = byContent.get(key);
  if (!built) {
    built = build(env);
    if (byContent.size >= MAX_BUILDS) byContent.delete(byContent.keys().next().value as string);
    byContent.set(key, built);
  }
  byEnv.set(env, built);
  return built;
}

/** The configuration and every string binding (secrets included: the key stays in this isolate's memory). */
function fingerprint(env: WorkerEnv): string {
  const strings = Object.entries(env).filter(([, value]) => typeof value === "string");
  return JSON.stringify([env[CONFIG_BINDING] ?? null, strings.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
}

async function build(env: WorkerEnv): Promise<Built> {
  try {
    return { ok: true, runtime: await buildWorkerRuntime(env) };
  } catch (error) {
    const problems: readonly ConfigProblem[] =
      error instanceof ConfigError ? error.problems : [{ path: "(start-up)", message: (error as Error).message }];
    consoleLogger({
      level: "error",
      msg: "invalid configuration: every request answers 500 until it is fixed",
      source: CONFIG_SOURCE,
      problems,
    });
    return { ok: false, response: () => configurationProblem(problems) };
  }
}

/** RFC 9457, like every other non-decision answer of the API; `errors` names each path, as for a malformed call. */
function configurationProblem(problems: readonly ConfigProblem[]): Response {
  const body = {
    type: "https://smtpgate.dev/problems/invalid-configuration",
    title: "Invalid configuration",
    status: 500,
    detail: `${CONFIG_SOURCE}: invalid configuration: ${problems.map((p) => `${p.path}: ${p.message}`).join("; ")}`,
    errors: problems.map((problem) => ({ field: problem.path, message: problem.message })),
  };
  return new Response(JSON.stringify(body), { status: 500, headers: { "Content-Type": PROBLEM_CONTENT_TYPE } });
}

export default {
  async fetch(request: Request, env: WorkerEnv, ctx: WorkerContext): Promise<Response> {
    const built = await runtimeFor(env);
    if (!built.ok) return built.response();
    const { runtime } = built;
    if (runtime.crls) {
      // Same freshness rules as Node, without a timer: each request starts the refreshes that are due. Once every
      // source holds a CRL that happens after the response (waitUntil); before that the request waits for it.
      const refresh = runtime.crls.refreshDue();
      if (runtime.crls.status().every((source) => source.crl !== null)) ctx.waitUntil(refresh);
      else await refresh;
    }
    return await runWithDirectoryScope(() => Promise.resolve(runtime.app.fetch(request, env, ctx)));
  },
};
