/**
 * Reading files on Node.js for a configuration: the configuration file itself and the files it names (CA
 * bundles, keys, certificates). A file that cannot be read is a configuration problem like any other, and it
 * names the absolute path that was tried, so a relative path and the working directory need no guessing:
 *
 *   relay.yaml: invalid configuration
 *     tls.keyFile: cannot read /etc/smtpgate/certs/relay.key: no such file
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { ConfigError, type ConfigProblem } from "../config/config-error.ts";
import { TOP_LEVEL } from "../validation/problems.ts";

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EISDIR: "a directory, not a file",
  ENOTDIR: "a part of the path is not a directory",
};

/** The text of the configuration file at `path`; throws ConfigError naming the file. */
export async function readConfigText(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    throw new ConfigError(path, [{ path: TOP_LEVEL, message: fileProblemText(path, error) }]);
  }
}

/**
 * Reads a file the configuration names at `configPath` (`tls.keyFile`); a file that cannot be read is returned as
 * a problem, so that all of them can be reported at once.
 */
export async function readNamedFile(
  file: string,
  configPath: string,
): Promise<{ ok: true; text: string } | { ok: false; problem: ConfigProblem }> {
  try {
    return { ok: true, text: await readFile(file, "utf8") };
  } catch (error) {
    return { ok: false, problem: { path: configPath, message: fileProblemText(file, error) } };
  }
}

/** `cannot read /abs/path: no such file`. */
export function fileProblemText(file: string, error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const why = code === undefined ? String(error) : (ERRNO_TEXT[code] ?? code);
  return `cannot read ${resolve(file)}: ${why}`;
}
