/**
 * The `smtpgate` command: one entry point for checking a configuration, trying decisions the way AsyncOS's
 * "Test Query" button does, inspecting certificates, making API tokens, and running the API and the relay.
 *
 *   smtpgate check /etc/smtpgate/smtpgate.yaml --connect
 *   smtpgate test-auth --config /etc/smtpgate/smtpgate.yaml --listener submission --user alice
 *
 * Each subcommand lives in its own file and is loaded only when asked for, so `smtpgate --help` starts fast.
 */
import { readFileSync } from "node:fs";
import { ConfigError } from "../lib/config/config-error.ts";
import { CommandError, EXIT, EXIT_STATUS_HELP, UsageError, type CommandRun } from "./command.ts";

interface Subcommand {
  /** As typed: one word, or two for a group (`cert inspect`). */
  name: string;
  synopsis: string;
  summary: string;
  load(): Promise<CommandRun>;
}

/** The API's entry point, handed the fronts' starter (the API itself imports no front). */
async function loadApi(): Promise<CommandRun> {
  const [{ main }, { startFronts }] = await Promise.all([
    import("../api/runtime/node/main.ts"),
    import("../fronts/start-fronts.ts"),
  ]);
  return (argv) => main(argv, startFronts);
}

const SUBCOMMANDS: readonly Subcommand[] = [
  {
    name: "check",
    synopsis: "smtpgate check [--connect] [--schema-only] FILE...",
    summary: "check a configuration: schema, files, secrets; --connect: bind and search on every directory host",
    load: async () => (await import("./check.ts")).run,
  },
  {
    name: "test-auth",
    synopsis:
      "smtpgate test-auth [--config FILE] --listener NAME --user NAME [--mechanism PLAIN|LOGIN]   (password on stdin)",
    summary: "run an SMTP AUTH decision and show every step (filters, hosts, timings, bind, allowance)",
    load: async () => (await import("./test-auth.ts")).run,
  },
  {
    name: "test-cert",
    synopsis: "smtpgate test-cert [--config FILE] --listener NAME [--chain FILE]... FILE",
    summary: "run a client certificate decision and show every step (path, CRLs, certificate query)",
    load: async () => (await import("./test-cert.ts")).run,
  },
  {
    name: "cert inspect",
    synopsis: "smtpgate cert inspect [--ca FILE] [--crl FILE]... [--query FILTER] [--allow-no-eku] FILE",
    summary: "print a certificate's query tokens; with --ca its path, with --crl its revocation status",
    load: async () => (await import("./cert-inspect.ts")).run,
  },
  {
    name: "flush",
    synopsis: "smtpgate flush [--api URL] [--token-env NAME] --user NAME",
    summary: "drop one user's cached decisions and brute-force blocks on a running API (every replica with Redis)",
    load: async () => (await import("./flush.ts")).run,
  },
  {
    name: "blocks",
    synopsis: "smtpgate blocks [--api URL] [clear --address IP | clear --user NAME]",
    summary: "list the brute-force blocks of a running API, or lift one (an address's or a user's)",
    load: async () => (await import("./blocks.ts")).run,
  },
  {
    name: "token new",
    synopsis: "smtpgate token new [--bytes N]",
    summary: "print a new random API token (for api.tokens)",
    load: async () => (await import("./token-new.ts")).run,
  },
  {
    name: "api",
    synopsis: "smtpgate api [--config FILE] [--host HOST] [--port PORT]",
    summary: "run the decision API (Node.js), and the protocol fronts its config names",
    load: loadApi,
  },
  {
    name: "serve",
    synopsis: "smtpgate serve [--config FILE] [--host HOST] [--port PORT]",
    summary: "the same as api",
    load: loadApi,
  },
  {
    name: "fronts",
    synopsis: "smtpgate fronts --config FILE",
    summary: "run the protocol fronts alone, deciding through the HTTP API (an edge process)",
    load: async () => (await import("./fronts.ts")).run,
  },
  {
    name: "relay",
    synopsis: "smtpgate relay [--config FILE]",
    summary: "run the edge relay",
    load: async () => (await import("../edge-relay/main.ts")).main,
  },
];

/** The package's version: its package.json is one level up from the sources, three from the built dist/node/cli. */
function version(): string {
  for (const up of ["../", "../../../"]) {
    try {
      const manifest = JSON.parse(readFileSync(new URL(`${up}package.json`, import.meta.url), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (manifest.name === "smtpgate" && manifest.version) return manifest.version;
    } catch {
      // Not this level.
    }
  }
  return "unknown";
}

const HELP = `usage: smtpgate <command> [options]

Commands:
${SUBCOMMANDS.map((command) => `  ${command.name.padEnd(14)}${command.summary}`).join("\n")}

Synopses:
${SUBCOMMANDS.map((command) => `  ${command.synopsis}`).join("\n")}

Run "smtpgate <command> --help" for a command's options. "smtpgate --version" prints the version.
The commands that read the API's configuration take --config FILE, or the file named by SMTPGATE_CONFIG.

${EXIT_STATUS_HELP}
`;

/** Runs one command line (without the node and script arguments); resolves to the exit status. */
export async function run(argv: readonly string[]): Promise<number> {
  const [first, second] = argv;
  if (first === undefined || first === "--help" || first === "-h" || first === "help") {
    const asked = first === "help" ? find(argv.slice(1)) : undefined;
    if (asked) return await start(asked.command, ["--help"]);
    process.stdout.write(HELP);
    return first === undefined ? EXIT.usage : EXIT.ok;
  }
  if (first === "--version" || first === "-V") {
    process.stdout.write(`smtpgate ${version()}\n`);
    return EXIT.ok;
  }
  const found = find(argv);
  if (!found) {
    const group = SUBCOMMANDS.filter((command) => command.name.startsWith(`${first} `));
    const problem =
      group.length > 0
        ? `${first}: ${second === undefined ? "missing subcommand" : `unknown subcommand ${JSON.stringify(second)}`} (${group.map((command) => command.name).join(", ")})`
        : `unknown command ${JSON.stringify(first)}`;
    process.stderr.write(`smtpgate: ${problem}\nRun "smtpgate --help" for the commands.\n`);
    return EXIT.usage;
  }
  return await start(found.command, found.rest);
}

function find(argv: readonly string[]): { command: Subcommand; rest: string[] } | undefined {
  for (const command of SUBCOMMANDS) {
    const words = command.name.split(" ");
    if (words.every((word, index) => argv[index] === word)) return { command, rest: argv.slice(words.length) };
  }
  return undefined;
}

async function start(command: Subcommand, argv: string[]): Promise<number> {
  try {
    return await (
      await command.load()
    )(argv);
  } catch (error) {
    const prefix = `smtpgate ${command.name}`;
    if (error instanceof UsageError) {
      process.stderr.write(`${prefix}: ${error.message}\nusage: ${command.synopsis}\n`);
      return error.status;
    }
    if (error instanceof CommandError) {
      process.stderr.write(`${prefix}: ${error.message}\n`);
      return error.status;
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`${prefix}: ${error.message}\n`);
      return EXIT.usage;
    }
    const detail = process.env.SMTPGATE_DEBUG ? ((error as Error).stack ?? String(error)) : String(error);
    process.stderr.write(`${prefix}: internal error: ${detail}\n`);
    return EXIT.internal;
  }
}

if (import.meta.main) process.exitCode = await run(process.argv.slice(2));
