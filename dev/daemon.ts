// A system daemon run in the foreground as a child of this process (Postfix's `master -d`, `dovecot -F`): killed
// when this process exits, ready once it accepts connections on its port, stopped by its PID; and the log file it
// writes, read whole and waited on; and the private folder it runs in, removed when it is closed or this process exits.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canConnect } from "./ports.ts";
import { killOnExit, removeOnExit } from "./processes.ts";
import { waitFor } from "./wait.ts";

export interface DaemonOptions {
  command: string;
  args: string[];
  /** Ready once 127.0.0.1:`port` accepts connections. */
  port: number;
  /** For the error message: "Postfix smtpd". */
  what: string;
  timeoutMs?: number;
}

export interface Daemon {
  /** The daemon's PID while it runs. */
  readonly pid: number | undefined;
  /** What it wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM, wait for the exit. Idempotent. */
  stop(): Promise<void>;
}

/** Starts the daemon and waits until its port accepts connections; SIGKILLs it and throws when it does not. */
export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  let child: ChildProcess | undefined = spawn(options.command, options.args, { stdio: ["ignore", "pipe", "pipe"] });
  const started = child;
  killOnExit(started);
  const exited = new Promise<void>((resolve) => started.once("exit", () => resolve()));
  let output = "";
  for (const stream of [started.stdout, started.stderr]) stream?.on("data", (chunk: Buffer) => (output += chunk));
  try {
    await waitFor(
      async () => {
        if (started.exitCode !== null) throw new Error(`${options.command} exited (${started.exitCode}): ${output}`);
        return canConnect(options.port);
      },
      { timeoutMs: options.timeoutMs ?? 15_000, intervalMs: 50, what: `${options.what} on 127.0.0.1:${options.port}` },
    );
  } catch (error) {
    started.kill("SIGKILL");
    throw error;
  }
  return {
    get pid() {
      return child?.pid;
    },
    output: () => output,
    stop: async () => {
      if (started.exitCode === null && started.signalCode === null) started.kill("SIGTERM");
      await exited;
      child = undefined;
    },
  };
}

export interface DaemonFolder {
  dir: string;
  /** Removes the folder now (and no longer at exit). */
  remove(): Promise<void>;
}

/** A fresh folder under the system's temporary one, for one daemon instance; mode 0755: its daemons' users reach it. */
export async function daemonFolder(prefix: string): Promise<DaemonFolder> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const forget = removeOnExit(dir);
  await chmod(dir, 0o755);
  return {
    dir,
    remove: async () => {
      forget();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface DaemonInFolder extends Daemon {
  /** stop() and remove the folder. Idempotent. */
  close(): Promise<void>;
}

/**
 * startDaemon for an instance living in `folder`: when it does not start, the folder is removed and the error
 * ends with the last of its log (`log()`, read then).
 */
export async function startDaemonIn(
  folder: DaemonFolder,
  options: DaemonOptions,
  log: () => string | Promise<string>,
): Promise<DaemonInFolder> {
  let daemon: Daemon;
  try {
    daemon = await startDaemon(options);
  } catch (error) {
    const text = await log();
    await folder.remove();
    throw new Error(`${options.what} did not start: ${(error as Error).message}\n${text.slice(-2000)}`, {
      cause: error,
    });
  }
  let closed = false;
  return {
    get pid() {
      return daemon.pid;
    },
    output: () => daemon.output(),
    stop: () => daemon.stop(),
    close: async () => {
      if (closed) return;
      closed = true;
      await daemon.stop();
      await folder.remove();
    },
  };
}

/** The whole of a daemon's log file now ("" before the daemon has made it). */
export function readLog(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

/** Waits until `pattern` matches `text()` (a log, re-read every 25 ms) and returns the match. */
export async function waitForMatch(
  text: () => string,
  pattern: RegExp,
  options: { timeoutMs: number; what: string },
): Promise<RegExpExecArray> {
  let match: RegExpExecArray | null = null;
  await waitFor(() => (match = pattern.exec(text())) !== null, {
    timeoutMs: options.timeoutMs,
    what: `${String(pattern)} in ${options.what}`,
  });
  return match as unknown as RegExpExecArray;
}
