/**
 * Pages that show a file the tests run, byte for byte, in a fenced code block: an edit to either side that the
 * other lacks is a problem (`npm run check:docs`), so the page never shows a configuration nobody tested.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";

export const EMBEDDED_FILES: Readonly<Record<string, readonly string[]>> = {
  "docs/integrations/nginx.md": ["dev/nginx/mail.conf"],
  "docs/integrations/exim.md": ["docs/integrations/exim-authenticators.conf"],
};

/** "page: does not show file byte for byte" for each page under `root` whose fenced blocks lack one of its files. */
export async function missingEmbeddings(
  root: string,
  embedded: Readonly<Record<string, readonly string[]>> = EMBEDDED_FILES,
): Promise<string[]> {
  const problems: string[] = [];
  for (const [page, files] of Object.entries(embedded)) {
    const text = await readFile(join(root, page), "utf8");
    for (const file of files) {
      const content = await readFile(join(root, file), "utf8");
      // The file as a whole fenced block: the opening fence (any info string), the file, the closing fence.
      if (!new RegExp(`(^|\\n)\`\`\`[a-z]*\\n${escapeRegExp(content)}\`\`\`(\\n|$)`).test(text))
        problems.push(`${page}: does not show ${file} byte for byte in a fenced block (copy the file in again)`);
    }
  }
  return problems;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
