/**
 * smtpgate edge relay.
 *
 *   npm run relay -- --config /etc/smtpgate/relay.yaml
 *
 * Needs the decision API running (it loads the listener's policy from it at start) and the API token in the
 * environment variable the config names. Exits 2 with a message for a bad config or an unreachable API.
 */
import { parseArgs } from "node:util";
import { ConfigError, throwIfProblems } from "../lib/config/config-error.ts";
import { resolveSecretRef } from "../lib/config/secret-ref.ts";
import { readNamedFile } from "../lib/node/read-config-file.ts";
import { stopOnSignals } from "../lib/node/graceful-stop.ts";
import { readRelayConfig } from "./config.ts";
import { jsonLines } from "./log.ts";
import { startRelay } from "./relay.ts";

const USAGE = "usage: smtpgate-relay --config FILE   (or set SMTPGATE_RELAY_CONFIG)";

function fail(message: string): never {
  process.stderr.write(`smtpgate-relay: ${message}\n`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: { config: { type: "string", short: "c" }, help: { type: "boolean", short: "h" } },
  }));
} catch (error) {
  fail(`${(error as Error).message}\n${USAGE}`);
}
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const path = values.config ?? process.env.SMTPGATE_RELAY_CONFIG;
if (!path) fail(`no configuration file given\n${USAGE}`);

try {
  const config = await readRelayConfig(path);
  const apiToken = resolveSecretRef(config.api.token, process.env, "api.token", path);
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
  const relay = await startRelay({
    config,
    apiToken,
    tls: { key: key as string, cert: cert as string },
    upstreamCa,
  });
  stopOnSignals(relay.close, (signal) =>
    jsonLines({
      level: "info",
      msg: "stopping: no new connections; open sessions get the grace period",
      signal,
      graceMs: config.limits.shutdownGraceMs,
    }),
  );
} catch (error) {
  if (error instanceof ConfigError) fail(error.message);
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE" || code === "EACCES") fail(`cannot listen: ${(error as Error).message}`);
  fail((error as Error).message);
}
