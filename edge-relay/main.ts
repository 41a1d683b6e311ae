/**
 * smtpgate edge relay: `smtpgate relay` (cli/main.ts), or this file run directly.
 *
 *   smtpgate relay --config /etc/smtpgate/relay.yaml
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

const USAGE = "usage: smtpgate relay --config FILE   (or set SMTPGATE_RELAY_CONFIG)";

const HELP = `${USAGE}

Runs the SMTP edge relay for one listener of the decision API until SIGTERM or SIGINT (open sessions get
limits.shutdownGraceMs). At start it loads the listener's host access table and mail-flow policies from the API
(api.url in FILE), with the token from the environment variable api.token names.

Options:
  -c, --config FILE   the relay's configuration (relay.yaml); default: $SMTPGATE_RELAY_CONFIG
  -h, --help          this help

Exit status: 0 stopped by a signal; 2 invalid configuration, unset token, unreadable key or certificate, the API
unreachable at start, or the address not available.
`;

function fail(message: string): number {
  process.stderr.write(`smtpgate-relay: ${message}\n`);
  return 2;
}

/** Starts the relay; resolves to 0 once it is listening (it runs until a signal), or to 2 when it cannot start. */
export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { config: { type: "string", short: "c" }, help: { type: "boolean", short: "h" } },
    }));
  } catch (error) {
    return fail(`${(error as Error).message}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const path = values.config ?? process.env.SMTPGATE_RELAY_CONFIG;
  if (!path) return fail(`no configuration file given\n${USAGE}`);

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
    return 0;
  } catch (error) {
    if (error instanceof ConfigError) return fail(error.message);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE" || code === "EACCES") return fail(`cannot listen: ${(error as Error).message}`);
    return fail((error as Error).message);
  }
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
