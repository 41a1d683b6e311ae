// Dockerfiles: syntax, base image, user, health check, and that they run the built package.
import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { validate as validateDockerfile } from "dockerfile-utils";
import { root, infra, notes, check, filesUnder, rel } from "./context.ts";

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** Instructions of a Dockerfile, continuation lines joined, comments dropped. */
function instructions(text: string): Instruction[] {
  const result: Instruction[] = [];
  let pending = "";
  let start = 0;
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (pending === "" && (line === "" || line.startsWith("#"))) return;
    if (pending === "") start = index + 1;
    if (line.startsWith("#")) return;
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const full = pending + line;
    pending = "";
    const match = /^(\S+)\s*(.*)$/.exec(full);
    if (match) result.push({ keyword: (match[1] as string).toUpperCase(), args: match[2] as string, line: start });
  });
  return result;
}

function words(args: string): string[] {
  const trimmed = args.trim();
  if (trimmed.startsWith("[")) {
    try {
      return JSON.parse(trimmed) as string[];
    } catch {
      return [];
    }
  }
  return trimmed.split(/\s+/).filter((word) => word !== "");
}

export async function checkDockerfiles(): Promise<void> {
  const dockerfiles = await filesUnder(join(infra, "docker"), (name) => name.endsWith(".Dockerfile"));
  check(dockerfiles.length >= 2, "infra/docker", "a Dockerfile each for the API and the relay");
  for (const file of dockerfiles) {
    const where = rel(file);
    const text = await readFile(file, "utf8");
    for (const diagnostic of validateDockerfile(text)) {
      check(false, `${where}:${diagnostic.range.start.line + 1}`, `Dockerfile: ${diagnostic.message}`);
    }
    const all = instructions(text);
    const stages = all.filter((instruction) => instruction.keyword === "FROM");
    check(
      stages.length > 0 && stages.every((stage) => /^node:24[-.\w]*(\s|$)/.test(stage.args)),
      where,
      "every stage FROM node:24-* (the Node.js the package is built and tested with)",
    );
    const finalStage = all.slice(all.lastIndexOf(stages.at(-1) as Instruction));
    const user = finalStage
      .filter((instruction) => instruction.keyword === "USER")
      .at(-1)
      ?.args.trim();
    check(user !== undefined && !/^(root|0)(:|$)/.test(user), where, "the final stage runs as a non-root USER");
    check(
      finalStage.some((instruction) => instruction.keyword === "HEALTHCHECK" && !/^NONE/i.test(instruction.args)),
      where,
      "a HEALTHCHECK in the final stage",
    );
    // A build stage may install the dev dependencies (TypeScript); what the image ships holds production ones only.
    const npmCi = finalStage.filter(
      (instruction) => instruction.keyword === "RUN" && /\bnpm ci\b/.test(instruction.args),
    );
    check(
      npmCi.length > 0 && npmCi.every((instruction) => instruction.args.includes("--omit=dev")),
      where,
      "the final stage's dependencies with npm ci --omit=dev",
    );
    check(
      all.some((instruction) => instruction.keyword === "RUN" && /\bnpm pack\b/.test(instruction.args)) &&
        finalStage.some(
          (instruction) => instruction.keyword === "RUN" && /\btar\b.*smtpgate\.tgz/.test(instruction.args),
        ),
      where,
      "the image runs the built package: npm pack in a build stage, its tarball unpacked in the final stage",
    );
    for (const copy of all.filter((instruction) => instruction.keyword === "COPY" || instruction.keyword === "ADD")) {
      const parts = words(copy.args);
      if (parts.some((part) => part.startsWith("--from="))) continue;
      const sources = parts.filter((part) => !part.startsWith("--")).slice(0, -1);
      for (const source of sources)
        check(
          existsSync(join(root, source)),
          `${where}:${copy.line}`,
          `COPY source ${source} does not exist in the repository`,
        );
    }
    const entrypoint = words(finalStage.find((instruction) => instruction.keyword === "ENTRYPOINT")?.args ?? "[]");
    checkPackageCommand(entrypoint, "", where, "ENTRYPOINT");
    check(
      existsSync(`${file}.dockerignore`),
      where,
      `${basename(file)}.dockerignore keeps the build context to what the image needs`,
    );
  }
  notes.push(
    "Dockerfiles: not built (no Docker engine here); syntax, base image, user, health check, COPY sources and entry point checked statically",
  );
}

// ---------------------------------------------------------------------------------------------------------------
// The built package, as images and units run it

/** Where the systemd units expect the package: `npm install --prefix /opt/smtpgate smtpgate`. */
export const INSTALLED_PACKAGE = "/opt/smtpgate/node_modules/smtpgate/";
const PACKAGE_COMMANDS = ["api", "relay"];

/**
 * A command line must run the package's `smtpgate` bin (under `installedAt`) with the API's or the relay's
 * subcommand: the compiled package, never the checkout's .ts files (Node refuses to strip types under
 * node_modules, and an older Node.js reaches the bin's version check instead of failing on a .ts extension).
 */
export function checkPackageCommand(command: readonly string[], installedAt: string, where: string, key: string): void {
  const manifest = packageManifest();
  const bin = manifest.bin?.smtpgate;
  const index = command.findIndex((part) => bin !== undefined && part === `${installedAt}${bin}`);
  check(
    index >= 0,
    where,
    `${key} runs ${command.join(" ") || "(nothing)"}: it must run the package's bin ${installedAt}${bin ?? "(no bin.smtpgate in package.json)"}`,
  );
  if (index < 0 || bin === undefined) return;
  check(existsSync(join(root, bin)), where, `${key}: ${bin} does not exist in the repository`);
  check(
    (manifest.files ?? []).some((entry) => bin.startsWith(entry.replace(/\/?$/, "/")) || bin === entry),
    where,
    `${key}: ${bin} is not in package.json "files", so the package lacks it`,
  );
  check(
    PACKAGE_COMMANDS.includes(command[index + 1] ?? ""),
    where,
    `${key}: the subcommand after ${bin} must be one of ${PACKAGE_COMMANDS.join(", ")}`,
  );
}

let manifestCache: { bin?: Record<string, string>; files?: string[] } | undefined;
function packageManifest(): { bin?: Record<string, string>; files?: string[] } {
  manifestCache ??= JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as typeof manifestCache;
  return manifestCache ?? {};
}
