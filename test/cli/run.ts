// Runs the real `smtpgate` command (cli/main.ts in a child Node.js) the way an operator would: arguments, an
// environment with only what is given, a password on stdin.
import { spawn } from "node:child_process";

const MAIN = new URL("../../cli/main.ts", import.meta.url).pathname;

export interface CommandRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function smtpgate(
  args: readonly string[],
  options: { env?: Record<string, string>; input?: string } = {},
): Promise<CommandRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      env: { PATH: process.env.PATH ?? "", ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
      timeout: 15_000,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? "");
  });
}

/** What an unknown option must print: one error line and the usage line, no stack trace. */
export function expectUsageError(run: CommandRun, command: string, message: string): void {
  const lines = run.stderr.trimEnd().split("\n");
  if (
    run.code !== 2 ||
    lines.length !== 2 ||
    !lines[0]?.startsWith(`smtpgate ${command}: ${message}`) ||
    !lines[1]?.startsWith(`usage: smtpgate ${command}`)
  )
    throw new Error(`expected a usage error (exit 2, two lines), got exit ${run.code}:\n${run.stderr}`);
}
