// Child processes and throw-away folders of the harness (slapd; the API, the relay and the sink as processes of
// their own in the benchmark): killed and removed when this process exits, Ctrl-C and a failed run included, so
// that nothing is left listening on a port or filling /tmp.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync, rmSync } from "node:fs";
import { waitFor } from "./wait.ts";

const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHooksInstalled = false;

function cleanUpSync(): void {
  for (const child of liveChildren) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  liveChildren.clear();
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  liveDirs.clear();
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on("exit", cleanUpSync);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      cleanUpSync();
      // Only re-raise when nobody else handles the signal: then the default action (exit) must still happen.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.once(signal, onSignal);
  }
}

/** SIGKILLs `child` when this process exits, unless it has gone by then. */
export function killOnExit(child: ChildProcess): void {
  installExitHooks();
  liveChildren.add(child);
  const forget = (): void => {
    liveChildren.delete(child);
  };
  child.once("exit", forget);
  // spawn failed (e.g. ENOENT): there is no process to kill
  child.once("error", () => {
    if (child.pid === undefined) forget();
  });
}

/** Removes `dir` when this process exits; call the function returned once the folder has been removed anyway. */
export function removeOnExit(dir: string): () => void {
  installExitHooks();
  liveDirs.add(dir);
  return () => {
    liveDirs.delete(dir);
  };
}

export interface NodeProcess {
  child: ChildProcess;
  /** The match of `ready` in the process's output. */
  ready: RegExpExecArray;
  /** SIGTERM (or `signal`) and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface NodeProcessOptions {
  /** The line that says the process is up, e.g. /"msg":"listening"/ or /PORT (\d+)/. */
  ready: RegExp;
  /** stdout and stderr go to this file (not through a pipe: a chatty child costs the parent no CPU then). */
  logFile: string;
  cwd?: string;
  env?: Record<string, string>;
  /** Give up when `ready` has not appeared by then (default 20 s). */
  timeoutMs?: number;
}

/** Starts `node ARGS` and waits until `ready` appears in its output; it is killed when this process exits. */
export async function startNodeProcess(args: string[], options: NodeProcessOptions): Promise<NodeProcess> {
  const fd = openSync(options.logFile, "w");
  const child = spawn(process.execPath, args, {
    ...(options.cwd ? { cwd: options.cwd } : {}),
    env: { ...process.env, ...options.env },
    stdio: ["ignore", fd, fd],
  });
  closeSync(fd);
  killOnExit(child);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const output = () => readFileSync(options.logFile, "utf8");
  let ready: RegExpExecArray | null = null;
  try {
    await waitFor(
      () => {
        ready = options.ready.exec(output());
        if (ready) return true;
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited (${child.exitCode})`);
        return false;
      },
      { timeoutMs: options.timeoutMs ?? 20_000, intervalMs: 50, what: String(options.ready) },
    );
  } catch (error) {
    child.kill("SIGKILL");
    throw new Error(`node ${args.join(" ")} did not start: ${(error as Error).message}\n${output().slice(-2000)}`, {
      cause: error,
    });
  }
  return {
    child,
    ready: ready as unknown as RegExpExecArray,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
