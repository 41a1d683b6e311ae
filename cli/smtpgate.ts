/**
 * The smtpgate command.
 *
 *   smtpgate serve --config smtpgate.yaml     the decision API, and the protocol fronts of its `fronts:` section
 *                                             deciding in-process (SIGHUP reloads both, SIGTERM drains)
 *   smtpgate fronts --config edge.yaml        the fronts alone, deciding through the HTTP API (fronts/edge.ts)
 *
 * Exits with status 2 and a message naming each problem when a configuration is missing or invalid.
 */
import { parseArgs } from "node:util";
import { runApiCommand } from "../api/runtime/node/command.ts";
import { startFronts } from "../fronts/start-fronts.ts";
import { readEdgeFrontsConfig, startEdgeFronts } from "../fronts/edge.ts";
import { ConfigError } from "../lib/config/config-error.ts";
import { createJsonLineLogger, writeToStdout } from "../lib/json-lines.ts";
import { stopOnSignals } from "../lib/node/graceful-stop.ts";

const USAGE = "usage: smtpgate serve --config FILE [--host HOST] [--port PORT] | smtpgate fronts --config FILE";

async function fronts(args: string[]): Promise<void> {
  const log = createJsonLineLogger(writeToStdout, { component: "fronts" });
  let path: string | undefined;
  try {
    path = parseArgs({ args, options: { config: { type: "string", short: "c" } } }).values.config;
  } catch (error) {
    fail(`${(error as Error).message}\n${USAGE}`);
  }
  if (path === undefined) fail(`no configuration file given\n${USAGE}`);
  try {
    const running = await startEdgeFronts(await readEdgeFrontsConfig(path), path, process.env, log);
    if (running.listening.length === 0) log({ level: "warn", msg: "fronts: none configured", config: path });
    stopOnSignals(running.close, (signal) => log({ level: "info", msg: "stopping", signal }));
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    const failed = error as NodeJS.ErrnoException & { address?: string; port?: number };
    if (failed.code === "EADDRINUSE" || failed.code === "EACCES" || failed.code === "EADDRNOTAVAIL")
      fail(`cannot listen on ${failed.address ?? "?"}:${failed.port ?? "?"} (${failed.code})`);
    throw error;
  }
}

function fail(message: string): never {
  process.stderr.write(`smtpgate: ${message}\n`);
  process.exit(2);
}

const [command, ...rest] = process.argv.slice(2);
if (command === "serve") await runApiCommand(rest, startFronts);
else if (command === "fronts") await fronts(rest);
else fail(USAGE);
