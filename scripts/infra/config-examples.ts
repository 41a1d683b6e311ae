// The configuration examples inside the ConfigMaps and wrangler.toml, with the API's and the relay's own schemas.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseConfig, validateConfig } from "../../api/config/load.ts";
import { ConfigError } from "../../lib/config/config-error.ts";
import { workersProblems } from "../../api/runtime/workers/config.ts";
import { relayListenerProblem } from "../check-compose.ts";
import { root, notes, check } from "./context.ts";
import type { Json, Manifest } from "./kubernetes.ts";

export async function checkConfigExamples(manifests: Manifest[]): Promise<void> {
  const configMapData = (name: string): Json | undefined =>
    manifests.find((manifest) => manifest.doc.kind === "ConfigMap" && (manifest.doc.metadata as Json).name === name)
      ?.doc.data as Json | undefined;

  const apiConfig = configMapData("smtpgate-api-config")?.["smtpgate.yaml"];
  check(
    typeof apiConfig === "string",
    "infra/kubernetes/api-config.yaml",
    "ConfigMap smtpgate-api-config holds smtpgate.yaml",
  );
  let apiListeners: Record<string, { hostAccessTable: unknown[] }> = {};
  if (typeof apiConfig === "string") {
    try {
      apiListeners = parseConfig(apiConfig, "smtpgate.yaml").listeners;
      check(true, "", "");
    } catch (error) {
      check(false, "infra/kubernetes/api-config.yaml smtpgate.yaml", (error as Error).message);
    }
  }

  const relayConfig = configMapData("smtpgate-relay-config")?.["relay.yaml"];
  check(
    typeof relayConfig === "string",
    "infra/kubernetes/relay-config.yaml",
    "ConfigMap smtpgate-relay-config holds relay.yaml",
  );
  if (typeof relayConfig === "string") {
    const relayModule = join(root, "edge-relay", "config.ts");
    if (!existsSync(relayModule)) {
      notes.push(
        "relay.yaml in the relay ConfigMap: not checked against the relay's schema (edge-relay/config.ts does not exist yet)",
      );
    } else {
      const { validateRelayConfig } = (await import(relayModule)) as {
        validateRelayConfig: (document: unknown, source: string) => unknown;
      };
      const { parse } = await import("yaml");
      try {
        const relay = validateRelayConfig(parse(relayConfig), "relay.yaml") as { listener: string };
        check(true, "", "");
        const listenerProblem = relayListenerProblem(apiListeners, relay.listener);
        check(listenerProblem === undefined, "infra/kubernetes/relay-config.yaml relay.yaml", listenerProblem ?? "");
      } catch (error) {
        check(false, "infra/kubernetes/relay-config.yaml relay.yaml", (error as Error).message);
      }
    }
  }

  // wrangler.toml: the example configuration must be valid and deployable on Workers.
  const { unstable_readConfig } = await import("wrangler");
  const wrangler = unstable_readConfig({ config: join(root, "wrangler.toml") });
  check(
    existsSync(resolve(root, String(wrangler.main))),
    "wrangler.toml",
    `main ${String(wrangler.main)} does not exist`,
  );
  check(
    wrangler.compatibility_flags.includes("nodejs_compat"),
    "wrangler.toml",
    "compatibility_flags needs nodejs_compat (node:net/node:tls for ldapts)",
  );
  const workerConfig = (wrangler.vars as Json).SMTPGATE_CONFIG;
  try {
    const config =
      typeof workerConfig === "string"
        ? parseConfig(workerConfig, "wrangler.toml SMTPGATE_CONFIG")
        : validateConfig(workerConfig, "wrangler.toml SMTPGATE_CONFIG");
    const limits = workersProblems(config);
    check(
      limits.length === 0,
      "wrangler.toml SMTPGATE_CONFIG",
      `asks for what Workers cannot do: ${limits.map((limit) => `${limit.path}: ${limit.message}`).join("; ")}`,
    );
    const { type, binding } = config.bruteForceStore;
    if (type === "durable-object") {
      // The Worker checks the binding at start-up; here, before a deploy: bound, of the right class, with storage.
      const bound = wrangler.durable_objects.bindings.find(
        (entry: { name: string; class_name: string }) => entry.name === binding,
      );
      check(
        bound?.class_name === "BruteForceObject",
        "wrangler.toml",
        `bruteForceStore.binding ${String(binding)} needs [[durable_objects.bindings]] name = "${String(binding)}", class_name = "BruteForceObject"`,
      );
      check(
        wrangler.migrations.some((migration: { new_sqlite_classes?: string[] }) =>
          migration.new_sqlite_classes?.includes("BruteForceObject"),
        ),
        "wrangler.toml",
        'BruteForceObject needs a migration with new_sqlite_classes = ["BruteForceObject"] (it uses SQLite storage)',
      );
    }
  } catch (error) {
    check(false, "wrangler.toml", error instanceof ConfigError ? error.message : String(error));
  }
}
