/**
 * smtpgate decision API on Node.js: `smtpgate api` (cli/main.ts), or this file run directly.
 *
 *   smtpgate api --config /etc/smtpgate/smtpgate.yaml
 *   SMTPGATE_CONFIG=/etc/smtpgate/smtpgate.yaml npm start
 *
 * `smtpgate api` (alias `serve`) also serves the protocol fronts of the config's `fronts:` section, deciding
 * in-process (the command hands in fronts/start-fronts.ts: the API imports no front).
 *
 * Exits with status 2 and a message naming each problem when the configuration is missing or invalid. SIGHUP
 * reloads the file (an invalid one is refused and the old one kept); SIGTERM drains decisions in flight.
 */
import { parseArgs } from "node:util";
import { ConfigError } from "../../../lib/config/config-error.ts";
import { stopOnSignals } from "../../../lib/node/graceful-stop.ts";
import { reloadOnSighup } from "./reload.ts";
import { jsonLineLogger, readConfigFile, startApiServer, type StartFronts } from "./server.ts";

const USAGE = "usage: smtpgate api --config FILE [--host HOST] [--port PORT]   (or set SMTPGATE_CONFIG)";

const HELP = `${USAGE}

Runs the decision API (POST /v1/decide/tls, POST /v1/decide/auth, GET /v1/listeners/{name}, /healthz, /readyz,
/metrics, /openapi.json), and the protocol fronts of FILE's fronts: section (Dovecot SASL, Postfix policy), until
SIGTERM or SIGINT, which drain the decisions in flight; SIGHUP re-reads FILE (an
invalid one is refused and logged, the old one stays). The secrets the configuration names ({ env: NAME }) must be
set in the environment; check them first with "smtpgate check FILE".

Options:
  -c, --config FILE   the configuration (YAML or JSON); default: $SMTPGATE_CONFIG
  --host HOST         listen on HOST instead of api.listen.host
  --port PORT         listen on PORT instead of api.listen.port (0: any free port)
  -h, --help          this help

Exit status: 0 stopped by a signal; 2 invalid configuration, unset secret or address not available (restarting
will not help: systemd's RestartPreventExitStatus=2).
`;

/** Starts the API; resolves to 0 once it is serving (it runs until a signal), or to 2 when it cannot start. */
export async function main(argv: string[], startFronts?: StartFronts): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: "string", short: "c" },
        host: { type: "string" },
        port: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    return fail(`${(error as Error).message}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const path = values.config ?? process.env.SMTPGATE_CONFIG;
  if (!path) return fail(`no configuration file given\n${USAGE}`);

  try {
    const config = await readConfigFile(path);
    const port = values.port === undefined ? config.api.listen.port : Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) return fail(`--port: not a port number: ${values.port}`);
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
    return 0;
  } catch (error) {
    if (error instanceof ConfigError) return fail(error.message);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL") {
      const { address, port } = error as { address?: string; port?: number };
      return fail(`cannot listen on ${address ?? "?"}:${port ?? "?"} (${code}); choose another api.listen or --port`);
    }
    throw error;
  }
}

function fail(message: string): number {
  process.stderr.write(`smtpgate: ${message}\n`);
  return 2;
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
