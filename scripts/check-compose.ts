/**
 * Static checks of infra/compose/compose.yaml, for scripts/check-infra.ts (there is no Docker engine here, and
 * `docker compose config` needs the compose plugin): it parses; each service builds from a Dockerfile and context
 * that exist or names a pinned image; one service builds the API image and one the relay image; secrets are
 * interpolated from the environment (`${NAME}`) or files, never written inline; every service runs with a
 * read-only root file system, no capabilities and no new privileges; the configuration files it mounts exist and
 * pass the API's and the relay's own schemas, and the relay's listener and API URL point at what the file defines.
 */
import { existsSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { parse } from "yaml";
import { parseConfig } from "../api/config/load.ts";
import { validateRelayConfig } from "../edge-relay/config.ts";

type Json = Record<string, unknown>;
export type Check = (ok: boolean, where: string, message: string) => void;

/** Environment variables whose value is a secret: they may only be interpolated, never written here. */
export const SECRET_NAME = /PASSWORD|TOKEN|SECRET|PRIVATE|CREDENTIAL/i;

const API_CONFIG_TARGET = "/etc/smtpgate/smtpgate.yaml";
const RELAY_CONFIG_TARGET = "/etc/smtpgate/relay.yaml";

/** The relay refuses to start for a listener without sender groups: an API config and a relay config must fit. */
export function relayListenerProblem(
  apiListeners: Readonly<Record<string, { hostAccessTable: unknown[] }>>,
  listener: string,
): string | undefined {
  const table = apiListeners[listener]?.hostAccessTable;
  return table !== undefined && table.length > 0
    ? undefined
    : `listener "${listener}" must exist in the API's configuration with a non-empty hostAccessTable`;
}

/** `KEY=value` list entries and `KEY: value` maps alike, as [name, value] (value undefined: passed through). */
function environmentOf(service: Json): [string, unknown][] {
  const environment = service.environment;
  if (Array.isArray(environment))
    return environment.map((entry) => {
      const [name, ...value] = String(entry).split("=");
      return [name as string, value.length === 0 ? undefined : value.join("=")];
    });
  return Object.entries((environment ?? {}) as Json);
}

function mountedFiles(service: Json, kind: "configs" | "secrets"): { source: string; target?: string }[] {
  return ((service[kind] ?? []) as unknown[]).map((entry) =>
    typeof entry === "string" ? { source: entry } : (entry as { source: string; target?: string }),
  );
}

export async function checkCompose(root: string, check: Check): Promise<void> {
  const file = join(root, "infra", "compose", "compose.yaml");
  const where = "infra/compose/compose.yaml";
  check(existsSync(file), where, "a compose file for the API and the relay");
  if (!existsSync(file)) return;
  const directory = dirname(file);
  let compose: Json;
  try {
    compose = parse(await readFile(file, "utf8"), { uniqueKeys: true }) as Json;
  } catch (error) {
    check(false, where, `YAML: ${(error as Error).message.split("\n")[0]}`);
    return;
  }
  const services = (compose.services ?? {}) as Record<string, Json>;
  const topConfigs = (compose.configs ?? {}) as Record<string, Json>;
  const topSecrets = (compose.secrets ?? {}) as Record<string, Json>;
  const dockerfiles: string[] = [];

  for (const [name, service] of Object.entries(services)) {
    const at = `${where} service ${name}`;
    const build = (typeof service.build === "string" ? { context: service.build } : service.build) as Json | undefined;
    check(build !== undefined || service.image !== undefined, at, "needs a build or an image");
    if (build) {
      const context = resolve(directory, String(build.context ?? "."));
      check(existsSync(context) && statSync(context).isDirectory(), at, `build context ${String(build.context)}`);
      const dockerfile = resolve(context, String(build.dockerfile ?? "Dockerfile"));
      check(existsSync(dockerfile), at, `Dockerfile ${String(build.dockerfile)} does not exist`);
      dockerfiles.push(dockerfile);
    }
    if (service.image !== undefined)
      check(/:[\w][\w.-]*$/.test(String(service.image)) && !/:latest$/.test(String(service.image)), at, "pin a tag");
    for (const [variable, value] of environmentOf(service)) {
      if (!SECRET_NAME.test(variable)) continue;
      check(
        value === undefined || /^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[?-][^}]*)?\}$/.test(String(value)),
        at,
        `environment ${variable}: a secret is interpolated (\${${variable}}) or passed through, never inline`,
      );
    }
    check(service.read_only === true, at, "read_only: true");
    check(((service.cap_drop ?? []) as string[]).includes("ALL"), at, "cap_drop: [ALL]");
    check(
      ((service.security_opt ?? []) as string[]).some((option) => /^no-new-privileges(:true)?$/.test(option)),
      at,
      "security_opt: [no-new-privileges:true]",
    );
    for (const dependency of Object.keys((service.depends_on ?? {}) as Json))
      check(dependency in services, at, `depends_on ${dependency}: no such service`);
    for (const { source } of mountedFiles(service, "configs"))
      check(source in topConfigs, at, `config ${source} is not defined under configs`);
    for (const { source } of mountedFiles(service, "secrets"))
      check(source in topSecrets, at, `secret ${source} is not defined under secrets`);
  }
  for (const image of ["api.Dockerfile", "relay.Dockerfile"])
    check(dockerfiles.includes(join(root, "infra", "docker", image)), where, `a service builds infra/docker/${image}`);
  for (const [name, secret] of Object.entries(topSecrets))
    check(
      secret.file !== undefined || secret.environment !== undefined,
      `${where} secrets.${name}`,
      "from a file or an environment variable, never inline",
    );

  await checkMountedConfigs(services, topConfigs, directory, where, check);
}

/** The API and relay configuration files the services mount: they exist, validate and fit together. */
async function checkMountedConfigs(
  services: Record<string, Json>,
  topConfigs: Record<string, Json>,
  directory: string,
  where: string,
  check: Check,
): Promise<void> {
  const mounted = (target: string): string | undefined => {
    for (const service of Object.values(services))
      for (const config of mountedFiles(service, "configs"))
        if (config.target === target) return topConfigs[config.source]?.file as string | undefined;
    return undefined;
  };
  const apiFile = mounted(API_CONFIG_TARGET);
  const relayFile = mounted(RELAY_CONFIG_TARGET);
  check(apiFile !== undefined, where, `a config mounted at ${API_CONFIG_TARGET} (the image's --config)`);
  check(relayFile !== undefined, where, `a config mounted at ${RELAY_CONFIG_TARGET} (the image's --config)`);
  if (apiFile === undefined || relayFile === undefined) return;
  for (const file of [apiFile, relayFile])
    check(existsSync(resolve(directory, file)), where, `config file ${file} does not exist`);
  if (!existsSync(resolve(directory, apiFile)) || !existsSync(resolve(directory, relayFile))) return;
  try {
    const api = parseConfig(await readFile(resolve(directory, apiFile), "utf8"), apiFile);
    const relay = validateRelayConfig(parse(await readFile(resolve(directory, relayFile), "utf8")), relayFile);
    const listenerProblem = relayListenerProblem(api.listeners, relay.listener);
    check(listenerProblem === undefined, `${where} ${relayFile}`, listenerProblem ?? "");
    const apiHost = new URL(relay.api.url).hostname;
    check(apiHost in services, `${where} ${relayFile}`, `api.url names ${apiHost}, which is not a compose service`);
  } catch (error) {
    check(false, where, (error as Error).message);
  }
}
