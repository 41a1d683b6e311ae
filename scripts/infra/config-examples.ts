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
  } catch (error) {
    check(false, "wrangler.toml", error instanceof ConfigError ? error.message : String(error));
  }
}
