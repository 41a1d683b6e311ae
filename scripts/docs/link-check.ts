/**
 * Relative links in the repository's Markdown files: every `[text](path)`, `[text](path#anchor)`, `(#anchor)` and
 * `[label]: path` must point at a file or folder that exists, and an anchor into a Markdown file at one of its
 * headings (GitHub's slugs) or an explicit `<a id>`. Links with a scheme (https:, mailto:) are not followed: CI
 * has no network, and their health is not this repository's to keep.
 */
import { existsSync, statSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";

/** Folders that hold no documentation of this project. */
const SKIPPED_DIRECTORIES = new Set([".git", "node_modules", ".toolchain", "dist", "coverage", ".wrangler", ".demo"]);

/**
 * Link targets that another branch adds: the lead writes docs/ARCHITECTURE.md. Remove an entry once its file is
 * merged; the checker then holds the links to it like any other.
 */
const PENDING_TARGETS = new Set(["docs/ARCHITECTURE.md"]);

export async function markdownFiles(root: string, dir = root): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory() && !SKIPPED_DIRECTORIES.has(entry.name) && !entry.name.startsWith(".scratch"))
      files.push(...(await markdownFiles(root, join(dir, entry.name))));
    else if (entry.isFile() && entry.name.endsWith(".md")) files.push(join(dir, entry.name));
  }
  return files.sort();
}

/** The text outside fenced code blocks and inline code, where links and headings are what they look like. */
export function proseOf(markdown: string): string {
  const lines: string[] = [];
  let fence: string | undefined;
  for (const line of markdown.split("\n")) {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (marker && (fence === undefined || marker.startsWith(fence))) {
      fence = fence === undefined ? marker : undefined;
      lines.push("");
      continue;
    }
    lines.push(fence === undefined ? line : "");
  }
  return lines.join("\n");
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens (github-slugger). */
export function githubSlug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M} _-]/gu, "")
    .replace(/ /g, "-");
}

/** Every anchor a Markdown file offers: its headings' slugs (repeats get -1, -2 ...) and `<a id="...">`. */
export function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const prose = proseOf(markdown);
  for (const match of prose.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const slug = githubSlug((match[1] as string).replace(/`/g, ""));
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  for (const match of prose.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(match[1] as string);
  return anchors;
}

/** The relative link targets of a Markdown text, with their line numbers. */
export function linksOf(markdown: string): { target: string; line: number }[] {
  const links: { target: string; line: number }[] = [];
  proseOf(markdown)
    .split("\n")
    .forEach((text, index) => {
      const prose = text.replace(/`[^`]*`/g, "");
      const targets = [
        ...[...prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((match) => match[1] as string),
        ...[...prose.matchAll(/^\s*\[[^\]]+\]:\s*(\S+)/g)].map((match) => match[1] as string),
      ];
      for (const target of targets) if (!/^[a-z][a-z0-9+.-]*:/i.test(target)) links.push({ target, line: index + 1 });
    });
  return links;
}

/** Problems with the relative links of every Markdown file under `root`, as `file:line: message`. */
export async function brokenLinks(root: string): Promise<string[]> {
  const problems: string[] = [];
  const anchorCache = new Map<string, Set<string>>();
  const anchorsIn = async (file: string): Promise<Set<string>> => {
    let anchors = anchorCache.get(file);
    if (!anchors) {
      anchors = anchorsOf(await readFile(file, "utf8"));
      anchorCache.set(file, anchors);
    }
    return anchors;
  };
  for (const file of await markdownFiles(root)) {
    const where = relative(root, file);
    for (const { target, line } of linksOf(await readFile(file, "utf8"))) {
      const [path = "", anchor] = target.split("#", 2);
      const destination = path === "" ? file : path.startsWith("/") ? join(root, path) : resolve(dirname(file), path);
      const name = relative(root, destination);
      if (PENDING_TARGETS.has(name)) continue;
      if (!existsSync(destination)) {
        problems.push(`${where}:${line}: ${target}: no such file ${name}`);
        continue;
      }
      if (anchor === undefined || anchor === "" || !destination.endsWith(".md") || statSync(destination).isDirectory())
        continue;
      if (!(await anchorsIn(destination)).has(decodeURIComponent(anchor)))
        problems.push(`${where}:${line}: ${target}: ${name} has no heading with the anchor #${anchor}`);
    }
  }
  return problems;
}
