// swaks against a private Postfix on 127.0.0.1: its transcript, also when the session ends in a refusal (swaks
// then exits non-zero, which is what the Postfix tests are about).
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

/** swaks's stdout for a session to 127.0.0.1:`port` with `args` (swaks options). */
export async function swaksTranscript(port: number, args: readonly string[]): Promise<string> {
  try {
    return (await run("swaks", ["--server", "127.0.0.1", "--port", String(port), ...args])).stdout;
  } catch (error) {
    const { stdout } = error as { stdout?: string };
    if (stdout === undefined) throw error;
    return stdout;
  }
}
