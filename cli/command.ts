/**
 * What every `smtpgate` subcommand shares: the exit statuses, the errors that end a command with one of them, and
 * option parsing that turns a mistyped option into a one-line usage error instead of a stack trace.
 */
import { readFileSync } from "node:fs";
import { parseArgs, parseEnv, type ParseArgsConfig } from "node:util";

/** The exit statuses of every subcommand (printed by `smtpgate --help`). */
export const EXIT = {
  ok: 0,
  /** The check or test ran and found a problem: a decision denied, a certificate invalid, a bind refused. */
  problem: 1,
  /** Usage or configuration error: unknown option, missing argument, invalid configuration, unset secret. */
  usage: 2,
  /** A directory or CRL source could not answer: what the API would answer with a tempfail. */
  unavailable: 3,
  /** A bug in smtpgate (sysexits.h EX_SOFTWARE). */
  internal: 70,
} as const;

export const EXIT_STATUS_HELP = `Exit status:
  0   ok
  1   the check or test found a problem (a decision denied, a certificate invalid, a bind refused)
  2   usage or configuration error (unknown option, invalid configuration, missing file or secret)
  3   a directory or CRL source could not answer (the API would tempfail)
  70  internal error (set SMTPGATE_DEBUG=1 for the stack trace, and report it)
  130 cancelled with Ctrl-C at the password prompt`;

/** A subcommand: its arguments (after the command's name) in, its exit status out. `--help` prints its help. */
export type CommandRun = (argv: string[]) => Promise<number>;

/** Ends a command with `status` and a one-line message. */
export class CommandError extends Error {
  override name = "CommandError";
  readonly status: number;

  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}

/** A command line that does not fit the command: the message, then the synopsis; exit 2. */
export class UsageError extends CommandError {
  override name = "UsageError";

  constructor(message: string) {
    super(message, EXIT.usage);
  }
}

type Options = NonNullable<ParseArgsConfig["options"]>;
type WithHelp<O extends Options> = O & { help: { type: "boolean"; short: "h" } };

/** parseArgs with `--help` added, unknown options and wrong numbers of arguments as UsageError. */
export function parseCommandLine<O extends Options>(
  argv: string[],
  options: O,
  positionals: { min: number; max: number; name: string } = { min: 0, max: 0, name: "" },
) {
  let parsed;
  try {
    parsed = parseArgs<{ args: string[]; options: WithHelp<O>; allowPositionals: true; strict: true }>({
      args: argv,
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    // parseArgs' messages name the option and say what is wrong; its hint about "--" is noise here.
    throw new UsageError((error as Error).message.replace(/\. To specify a positional argument.*$/s, ""));
  }
  const help = (parsed.values as { help?: boolean }).help === true;
  if (!help && parsed.positionals.length < positionals.min) throw new UsageError(`missing ${positionals.name}`);
  if (parsed.positionals.length > positionals.max)
    throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[positionals.max])}`);
  return { values: parsed.values, positionals: parsed.positionals, help };
}

/** A required string option, or a UsageError naming it. */
export function required(value: string | boolean | (string | boolean)[] | undefined, option: string): string {
  if (typeof value !== "string" || value === "") throw new UsageError(`missing --${option}`);
  return value;
}

/**
 * The environment secrets are read from: the process's, with `NAME=value` lines of an env file over it (the
 * format of systemd's EnvironmentFile and of `node --env-file`), so a check sees what the service would.
 */
export function environment(envFile: string | undefined): Readonly<Record<string, string | undefined>> {
  if (envFile === undefined) return process.env;
  let text: string;
  try {
    text = readFileSync(envFile, "utf8");
  } catch (error) {
    throw new CommandError(`--env-file ${envFile}: cannot read (${(error as NodeJS.ErrnoException).code})`, EXIT.usage);
  }
  return { ...process.env, ...parseEnv(text) };
}

/** The configuration file of a command that reads one: --config, else $SMTPGATE_CONFIG. */
export function configPath(option: string | undefined): string {
  const path = option ?? process.env.SMTPGATE_CONFIG;
  if (!path) throw new UsageError("no configuration file: give --config FILE or set SMTPGATE_CONFIG");
  return path;
}

/** Runs `operation` and measures it, in whole milliseconds (what an operator compares with a timeout). */
export async function timed<T>(operation: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const started = performance.now();
  const result = await operation();
  return { result, ms: Math.round(performance.now() - started) };
}
