/**
 * The generated documentation pages and the link check.
 *
 *   node scripts/docs.ts           rewrite docs/configuration-reference.md and docs/metrics.md
 *   node scripts/docs.ts --check   exit 1 when a checked-in page differs from what the code generates, or when a
 *                                  relative link or #anchor in any *.md file points nowhere, or when a page no
 *                                  longer shows a tested file byte for byte (npm test runs this)
 */
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { configReferenceMarkdown, undescribedKeys } from "./docs/config-reference.ts";
import { missingEmbeddings } from "./docs/embedded-files.ts";
import { brokenLinks } from "./docs/link-check.ts";
import { metricsReferenceMarkdown } from "./docs/metrics-reference.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

const GENERATED: Record<string, () => string> = {
  "docs/configuration-reference.md": configReferenceMarkdown,
  "docs/metrics.md": metricsReferenceMarkdown,
};

async function main(): Promise<void> {
  const check = process.argv.includes("--check");
  const problems: string[] = [];
  for (const [page, generate] of Object.entries(GENERATED)) {
    const path = join(root, page);
    const wanted = generate();
    const current = existsSync(path) ? await readFile(path, "utf8") : undefined;
    if (current === wanted) continue;
    if (check) problems.push(`${page}: stale, it differs from what the code generates: run \`npm run docs\``);
    else {
      await writeFile(path, wanted);
      console.log(`docs: wrote ${page}`);
    }
  }
  if (!check) {
    const undescribed = undescribedKeys();
    if (undescribed.length > 0)
      console.log(
        `docs: ${undescribed.length} configuration keys have no .describe() text (${undescribed.join("; ")})`,
      );
  }
  problems.push(...(await brokenLinks(root)));
  problems.push(...(await missingEmbeddings(root)));
  for (const problem of problems) console.error(`problem: ${problem}`);
  console.log(`docs: ${Object.keys(GENERATED).length} generated pages, ${problems.length} problems`);
  if (problems.length > 0) process.exit(1);
}

await main();
