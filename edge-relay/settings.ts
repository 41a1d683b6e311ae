/**
 * Everything the relay reads from disk and the environment: its configuration file, the API token it names, the
 * TLS key and certificate, the upstream's CA bundle. Read the same way at start and on every SIGHUP; any problem
 * is a ConfigError naming the key and the file.
 */
import { throwIfProblems } from "../lib/config/config-error.ts";
import { resolveSecretRef } from "../lib/config/secret-ref.ts";
import { readNamedFile } from "../lib/node/read-config-file.ts";
import { readRelayConfig, type RelayConfig } from "./config.ts";
import { jsonLines, type Logger } from "./log.ts";
import type { Relay } from "./relay.ts";

export interface RelaySettings {
  config: RelayConfig;
  /** The API token, resolved from the environment. */
  apiToken: string;
  tls: { key: string; cert: string };
  upstreamCa: string | undefined;
}

export async function readRelaySettings(path: string, env: NodeJS.ProcessEnv = process.env): Promise<RelaySettings> {
  const config = await readRelayConfig(path);
  const apiToken = resolveSecretRef(config.api.token, env, "api.token", path);
  // Every file at once: one start (or reload) names every unreadable one.
  const files = await Promise.all([
    readNamedFile(config.tls.keyFile, "tls.keyFile"),
    readNamedFile(config.tls.certFile, "tls.certFile"),
    config.upstream.tls.caFile ? readNamedFile(config.upstream.tls.caFile, "upstream.tls.caFile") : undefined,
  ]);
  throwIfProblems(
    path,
    files.flatMap((file) => (file?.ok === false ? [file.problem] : [])),
  );
  const [key, cert, upstreamCa] = files.map((file) => (file?.ok ? file.text : undefined));
  return { config, apiToken, tls: { key: key as string, cert: cert as string }, upstreamCa };
}

/**
 * SIGHUP: reads the files again and hands them to the running relay. An invalid new configuration (or a key that
 * does not match its certificate) is refused and logged, and the running one stays in force; sessions are never
 * dropped. The API token comes from the environment, which a running process cannot reread: a new token value
 * needs a restart (a new variable name in api.token is read from the same environment).
 */
export async function reloadFromFile(relay: Relay, path: string, log: Logger = jsonLines): Promise<void> {
  log({ level: "info", msg: "SIGHUP: reloading the configuration", config: path });
  try {
    await relay.reload(await readRelaySettings(path));
  } catch (error) {
    log({
      level: "error",
      msg: "reload refused: the running configuration stays in force",
      config: path,
      error: (error as Error).message,
    });
  }
}
