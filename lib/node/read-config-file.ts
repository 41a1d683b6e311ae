// Reading a configuration file on Node.js (the API's and the relay's): a missing or unreadable file is a
// ConfigError naming the file, like any other configuration problem.
import { readFile } from "node:fs/promises";
import { ConfigError } from "../../api/config/load.ts";

export async function readConfigText(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(path, [
      code === "ENOENT" ? "no such file" : `cannot read the file (${code ?? String(error)})`,
    ]);
  }
}
