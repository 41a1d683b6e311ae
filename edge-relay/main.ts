/**
 * smtpgate edge relay: `smtpgate relay` (cli/main.ts), or this file run directly.
 *
 *   smtpgate relay --config /etc/smtpgate/relay.yaml
 *
 * Needs the API token in the environment variable the config names. Does not listen until it has loaded the
 * listener's policy from the decision API, retrying while the API cannot answer (edge-relay/startup.ts). Exits 2
 * with a message for a configuration error (bad file, a token the API refuses, an unknown listener), which the
 * systemd unit does not restart; 0 when stopped (SIGTERM, SIGINT), also while still waiting for the API.
 * SIGHUP reloads the configuration file and the TLS key and certificate (settings.ts, Relay.reload).
 */
import { parseArgs } from "node:util";
import { ConfigError } from "../lib/config/config-error.ts";
import { stopOnSignals } from "../lib/node/graceful-stop.ts";
import { jsonLines } from "./log.ts";
import { startRelay } from "./relay.ts";
import { readRelaySettings, reloadFromFile } from "./settings.ts";
import { PolicyConfigurationError } from "./startup.ts";

const USAGE = "usage: smtpgate relay --config FILE   (or set SMTPGATE_RELAY_CONFIG)";

const HELP = `${USAGE}

Runs the SMTP edge relay for one listener of the decision API until SIGTERM or SIGINT (open sessions get
limits.shutdownGraceMs). At start it loads the listener's host access table and mail-flow policies from the API
(api.url in FILE), with the token from the environment variable api.token names.

Options:
  -c, --config FILE   the relay's configuration (relay.yaml); default: $SMTPGATE_RELAY_CONFIG
  -h, --help          this help

It does not listen until the policy has loaded: while the API cannot answer it retries with backoff. SIGHUP
reloads the file and the TLS key and certificate (an invalid new configuration is refused and the old one kept).

Exit status: 0 stopped by a signal (also while still waiting for the API); 2 invalid configuration, unset token,
unreadable key or certificate, a token the API refuses, an unknown listener, or the address not available.
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

  // Until the relay runs, SIGINT/SIGTERM end the wait for the listener policy (exit 0: asked to stop, not a
  // failure) and SIGHUP has nothing to reload yet (without a listener it would kill the process).
  const stopWaiting = new AbortController();
  const beforeStart = (signal: NodeJS.Signals): void => {
    jsonLines({ level: "info", msg: "stopping before the relay started (the listener policy was not loaded)", signal });
    stopWaiting.abort();
  };
  const reloadBeforeStart = (): void =>
    jsonLines({
      level: "info",
      msg: "SIGHUP ignored: the relay has not started yet (it reads its files when it does)",
    });
  process.once("SIGINT", beforeStart);
  process.once("SIGTERM", beforeStart);
  process.on("SIGHUP", reloadBeforeStart);

  try {
    const settings = await readRelaySettings(path);
    const relay = await startRelay({ ...settings, signal: stopWaiting.signal });
    if (stopWaiting.signal.aborted) {
      // Asked to stop just as the policy arrived.
      await relay.close();
      return 0;
    }
    process.off("SIGINT", beforeStart);
    process.off("SIGTERM", beforeStart);
    process.off("SIGHUP", reloadBeforeStart);
    stopOnSignals(relay.close, (signal) =>
      jsonLines({
        level: "info",
        msg: "stopping: no new connections; open sessions get the grace period",
        signal,
        graceMs: settings.config.limits.shutdownGraceMs,
      }),
    );
    process.on("SIGHUP", () => void reloadFromFile(relay, path));
    return 0;
  } catch (error) {
    if (stopWaiting.signal.aborted) return 0;
    if (error instanceof ConfigError || error instanceof PolicyConfigurationError) return fail(error.message);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE" || code === "EACCES") return fail(`cannot listen: ${(error as Error).message}`);
    return fail((error as Error).message);
  }
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
