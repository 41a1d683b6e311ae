/**
 * smtpgate edge relay.
 *
 *   npm run relay -- --config /etc/smtpgate/relay.yaml
 *
 * Needs the API token in the environment variable the config names. Does not listen until it has loaded the
 * listener's policy from the decision API, retrying while the API cannot answer (edge-relay/startup.ts). Exits 2
 * with a message for a configuration error (bad file, a token the API refuses, an unknown listener), which the
 * systemd unit does not restart; 0 when stopped (SIGTERM, SIGINT), also while still waiting for the API.
 * SIGHUP reloads the configuration file and the TLS key and certificate (settings.ts, Relay.reload).
 */
import { parseArgs } from "node:util";
import { ConfigError } from "../api/config/load.ts";
import { stopOnSignals } from "../api/runtime/node/signals.ts";
import { jsonLines } from "./log.ts";
import { startRelay } from "./relay.ts";
import { readRelaySettings, reloadFromFile } from "./settings.ts";
import { PolicyConfigurationError } from "./startup.ts";

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

// Until the relay runs, SIGINT/SIGTERM end the wait for the listener policy (exit 0: asked to stop, not a failure)
// and SIGHUP has nothing to reload yet (without a listener it would kill the process).
const stopWaiting = new AbortController();
const beforeStart = (signal: NodeJS.Signals): void => {
  jsonLines({ level: "info", msg: "stopping before the relay started (the listener policy was not loaded)", signal });
  stopWaiting.abort();
};
const reloadBeforeStart = (): void =>
  jsonLines({ level: "info", msg: "SIGHUP ignored: the relay has not started yet (it reads its files when it does)" });
process.once("SIGINT", beforeStart);
process.once("SIGTERM", beforeStart);
process.on("SIGHUP", reloadBeforeStart);

try {
  const settings = await readRelaySettings(path);
  const relay = await startRelay({ ...settings, signal: stopWaiting.signal });
  if (stopWaiting.signal.aborted) {
    // Asked to stop just as the policy arrived.
    await relay.close();
    process.exit(0);
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
} catch (error) {
  if (stopWaiting.signal.aborted) process.exit(0);
  if (error instanceof ConfigError || error instanceof PolicyConfigurationError) fail(error.message);
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE" || code === "EACCES") fail(`cannot listen: ${(error as Error).message}`);
  fail((error as Error).message);
}
