/**
 * The command that runs the smtpgate decision API on Node.js: api/runtime/node/main.ts (the API alone) and
 * `smtpgate serve` (cli/smtpgate.ts: the API and the protocol fronts of its `fronts:` section).
 *
 *   npm start -- --config /etc/smtpgate/smtpgate.yaml
 *   SMTPGATE_CONFIG=/etc/smtpgate/smtpgate.yaml npm start
 *
 * Exits with status 2 and a message naming each problem when the configuration is missing or invalid. SIGHUP
 * reloads the file (an invalid one is refused and the old one kept); SIGTERM drains decisions in flight.
 */
import { parseArgs } from "node:util";
import { ConfigError } from "../../../lib/config/config-error.ts";
import { reloadOnSighup } from "./reload.ts";
import { jsonLineLogger, readConfigFile, startApiServer, type StartFronts } from "./server.ts";
import { stopOnSignals } from "../../../lib/node/graceful-stop.ts";

const USAGE = "usage: smtpgate-api --config FILE [--host HOST] [--port PORT]   (or set SMTPGATE_CONFIG)";

export async function runApiCommand(args: string[], startFronts?: StartFronts): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        config: { type: "string", short: "c" },
        host: { type: "string" },
        port: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    fail(`${(error as Error).message}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const path = values.config ?? process.env.SMTPGATE_CONFIG;
  if (!path) fail(`no configuration file given\n${USAGE}`);

  try {
    const config = await readConfigFile(path);
    const port = values.port === undefined ? config.api.listen.port : Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port: not a port number: ${values.port}`);
    const server = await startApiServer({
      config,
      source: path,
      listen: { host: values.host ?? config.api.listen.host, port },
      ...(startFronts ? { startFronts } : {}),
    });
    jsonLineLogger({
      level: "info",
      msg: "listening",
      url: server.url,
      config: path,
      directories: Object.keys(config.directories),
      listeners: Object.keys(config.listeners),
    });
    // SIGTERM/SIGINT drain the decisions in flight (api.shutdownGraceMs) before the process exits.
    stopOnSignals(server.close, (signal) => jsonLineLogger({ level: "info", msg: "stopping", signal }));
    reloadOnSighup(server, path, jsonLineLogger);
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL") {
      const { address, port } = error as { address?: string; port?: number };
      fail(`cannot listen on ${address ?? "?"}:${port ?? "?"} (${code}); choose another api.listen or --port`);
    }
    throw error;
  }
}

function fail(message: string): never {
  process.stderr.write(`smtpgate: ${message}\n`);
  process.exit(2);
}
