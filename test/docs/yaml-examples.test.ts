// The YAML examples in docs/: a block that is a whole configuration must pass its schema, and an excerpt that
// names the tested example it comes from (`infra/config/flow-b.yaml`, validated by api/config/load.test.ts) must
// say nothing that file does not say. A hand copy that drifts from the code or from the file fails here.
import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { configSchema } from "../../api/config/schema.ts";
import { relayConfigSchema } from "../../edge-relay/config.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const DOCS = join(ROOT, "docs");
/** A sentence just before a block that names an example file: the block is an excerpt of it. */
const NAMED_EXAMPLE = /`(infra\/config\/[\w.-]+\.yaml)`[^`]*(in short|the parts)/;
const API_CONFIG_KEYS = ["directories", "authProfiles", "listeners", "api"];
const RELAY_CONFIG_KEYS = ["listener", "api", "tls", "listen", "upstream"];

interface YamlBlock {
  file: string;
  line: number;
  text: string;
  /** The example file the sentence before the block names, if any. */
  excerptOf: string | null;
}

async function markdownFiles(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { withFileTypes: true, recursive: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith(".md"))
    .map((entry) => join(entry.parentPath, entry.name));
}

function yamlBlocks(file: string, markdown: string): YamlBlock[] {
  const lines = markdown.split("\n");
  const blocks: YamlBlock[] = [];
  for (let start = 0; start < lines.length; start += 1) {
    if (lines[start]?.trim() !== "```yaml") continue;
    let end = start + 1;
    while (end < lines.length && lines[end]?.trim() !== "```") end += 1;
    const before = lines.slice(Math.max(0, start - 3), start).join(" ");
    blocks.push({
      file: relative(ROOT, file),
      line: start + 1,
      text: lines.slice(start + 1, end).join("\n"),
      excerptOf: NAMED_EXAMPLE.exec(before)?.[1] ?? null,
    });
    start = end;
  }
  return blocks;
}

/** The paths at which `excerpt` says something `whole` does not (objects: a subset of keys; anything else: equal). */
function differences(excerpt: unknown, whole: unknown, path = ""): string[] {
  if (excerpt !== null && typeof excerpt === "object" && !Array.isArray(excerpt)) {
    if (whole === null || typeof whole !== "object" || Array.isArray(whole)) return [path || "(top)"];
    return Object.entries(excerpt).flatMap(([key, value]) =>
      differences(value, (whole as Record<string, unknown>)[key], path ? `${path}.${key}` : key),
    );
  }
  return JSON.stringify(excerpt) === JSON.stringify(whole) ? [] : [path];
}

const hasKeys = (document: unknown, keys: readonly string[]) =>
  document !== null && typeof document === "object" && keys.every((key) => key in document);

const blocks = (
  await Promise.all((await markdownFiles(DOCS)).map(async (file) => yamlBlocks(file, await readFile(file, "utf8"))))
).flat();

describe("YAML examples in docs/", () => {
  it("finds the excerpts of the tested example files and some whole configurations", () => {
    expect(blocks.filter((block) => block.excerptOf !== null).length).toBeGreaterThanOrEqual(3);
    expect(blocks.filter((block) => hasKeys(parse(block.text), RELAY_CONFIG_KEYS)).length).toBeGreaterThanOrEqual(1);
  });

  it.each(blocks.map((block) => [`${block.file}:${block.line}`, block] as const))("%s parses as YAML", (_, block) => {
    expect(() => parse(block.text)).not.toThrow();
  });

  it.each(blocks.filter((block) => block.excerptOf !== null).map((block) => [`${block.file}:${block.line}`, block]))(
    "%s says only what the example file it names says",
    async (_, block) => {
      const whole: unknown = parse(await readFile(join(ROOT, (block as YamlBlock).excerptOf as string), "utf8"));
      expect(differences(parse((block as YamlBlock).text), whole)).toEqual([]);
    },
  );

  it.each(blocks.map((block) => [`${block.file}:${block.line}`, block] as const))(
    "%s passes its schema when it is a whole configuration",
    (_, block) => {
      const document: unknown = parse(block.text);
      if (hasKeys(document, API_CONFIG_KEYS)) expect(configSchema.safeParse(document).error?.issues).toBeUndefined();
      else if (hasKeys(document, RELAY_CONFIG_KEYS))
        expect(relayConfigSchema.safeParse(document).error?.issues).toBeUndefined();
    },
  );
});
