/**
 * `smtpgate fronts --config edge.yaml`: the protocol fronts alone (Dovecot SASL, Postfix policy) at the edge,
 * deciding through the HTTP API (fronts/edge.ts), e.g. beside a Postfix whose API runs elsewhere (Workers too).
 */
import { readEdgeFrontsConfig, startEdgeFronts } from "../fronts/edge.ts";
import { createJsonLineLogger, writeToStdout } from "../lib/json-lines.ts";
import { stopOnSignals } from "../lib/node/graceful-stop.ts";
import { CommandError, EXIT, parseCommandLine, required } from "./command.ts";

const HELP = `usage: smtpgate fronts --config FILE

Serves the protocol fronts of FILE (an edge configuration: the API's url and token, and the sockets of each
front) until SIGTERM or SIGINT, deciding through the decision API over HTTP.

Options:
  -c, --config FILE   the edge configuration (YAML or JSON)
  -h, --help          this help

Exit status: 0 stopped by a signal; 2 invalid configuration or an address not available.
`;

export async function run(argv: string[]): Promise<number> {
  const { values, help } = parseCommandLine(argv, { config: { type: "string", short: "c" } });
  if (help) {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  const path = required(values.config, "--config");
  const log = createJsonLineLogger(writeToStdout, { component: "fronts" });
  try {
    const running = await startEdgeFronts(await readEdgeFrontsConfig(path), path, process.env, log);
    if (running.listening.length === 0) log({ level: "warn", msg: "fronts: none configured", config: path });
    stopOnSignals(running.close, (signal) => log({ level: "info", msg: "stopping", signal }));
    return EXIT.ok;
  } catch (error) {
    const failed = error as NodeJS.ErrnoException & { address?: string; port?: number };
    if (failed.code === "EADDRINUSE" || failed.code === "EACCES" || failed.code === "EADDRNOTAVAIL")
      throw new CommandError(
        `cannot listen on ${failed.address ?? "?"}:${failed.port ?? "?"} (${failed.code})`,
        EXIT.usage,
      );
    throw error;
  }
}
