// What every infra check shares: the repository's paths, the count of checks, and the problems and notes found.
import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const infra = join(root, "infra");
export const problems: string[] = [];
export const notes: string[] = [];
let checks = 0;

/** One check: counted, and a problem at `where` unless `ok`. */
export function check(ok: boolean, where: string, message: string): void {
  checks += 1;
  if (!ok) problems.push(`${where}: ${message}`);
}

export function checkCount(): number {
  return checks;
}

export async function filesUnder(dir: string, test: (name: string) => boolean): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((entry) => entry.isFile() && test(entry.name))
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

export const rel = (path: string): string => relative(root, path);
