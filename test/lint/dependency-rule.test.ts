// The dependency rule is in eslint.config.js; this proves it bites: files with a wrong import are written into
// the tree for a moment and linted with the project's own configuration, next to files with a right one.
import { mkdir, rm, rmdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ESLint } from "eslint";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = new URL("../..", import.meta.url).pathname;
const TAG = `lint-probe-${process.pid}`;

/** Each probe: where it sits, what it imports, and whether the dependency rule must refuse it. */
const PROBES = {
  coreImportsConfig: { dir: "api/core", source: 'import type { Config } from "../config/schema.ts";', refused: true },
  coreImportsGate: { dir: "api/core", source: 'import type { Gate } from "../../api/gate/gate.ts";', refused: true },
  coreImportsContract: {
    dir: "api/core",
    source: 'import type { Reason } from "../../contract/verdict.ts";',
    refused: false,
  },
  configImportsCore: {
    dir: "api/config",
    source: 'import type { Decision } from "../core/verdict.ts";',
    refused: false,
  },
  httpImportsRuntime: {
    dir: "api/http",
    source: 'import type { ApiServer } from "../runtime/node/server.ts";',
    refused: true,
  },
  httpMountsNginxFront: {
    dir: "api/http",
    source: 'import { createNginxAuth } from "../../fronts/nginx-auth/index.ts";',
    refused: false,
  },
  httpImportsOtherFront: {
    dir: "api/http",
    source: 'import { serve } from "../../fronts/dovecot-sasl/index.ts";',
    refused: true,
  },
  relayImportsApi: { dir: "edge-relay", source: 'import { parseConfig } from "../api/config/load.ts";', refused: true },
  relayImportsLib: { dir: "edge-relay", source: 'import { Registry } from "../lib/prometheus.ts";', refused: false },
  mailFlowImportsRelay: {
    dir: "mail-flow",
    source: 'import { jsonLines } from "../edge-relay/log.ts";',
    refused: true,
  },
  libImportsContract: { dir: "lib", source: 'import type { Verdict } from "../contract/verdict.ts";', refused: true },
  libImportsNodeOnlyLib: {
    dir: "lib/config",
    source: 'import { readConfigText } from "../node/read-config-file.ts";',
    refused: true,
  },
  contractImportsRelay: { dir: "contract", source: 'import { jsonLines } from "../edge-relay/log.ts";', refused: true },
  workerImportsNodeOnlyLib: {
    dir: "api/runtime/workers",
    source: 'import { stopOnSignals } from "../../../lib/node/graceful-stop.ts";',
    refused: true,
  },
} as const;

const pathOf = (name: string, dir: string): string => join(ROOT, dir, `${TAG}-${name}.ts`);
const LONG_SOURCE = join(ROOT, "lib", `${TAG}-long.ts`);
const LONG_TEST = join(ROOT, "lib", `${TAG}-long.test.ts`);
const created: string[] = [];
let results: Map<string, ESLint.LintResult>;

beforeAll(async () => {
  const files: [string, string][] = Object.entries(PROBES).map(([name, probe]) => [
    pathOf(name, probe.dir),
    `${probe.source}\nexport type Probe = unknown;\n`,
  ]);
  const long = `${Array.from({ length: 401 }, (_, i) => `export const line${i} = ${i};`).join("\n")}\n`;
  files.push([LONG_SOURCE, long], [LONG_TEST, long]);
  for (const [file, text] of files) {
    await mkdir(dirname(file), { recursive: true });
    created.push(file);
    await writeFile(file, text);
  }
  const eslint = new ESLint({ cwd: ROOT });
  results = new Map((await eslint.lintFiles(files.map(([file]) => file))).map((result) => [result.filePath, result]));
}, 120_000);

afterAll(async () => {
  await Promise.all(created.map((file) => rm(file, { force: true })));
  // mail-flow/ may not exist yet: remove it again if the probe created it (rmdir refuses a folder with files).
  await rmdir(join(ROOT, "mail-flow")).catch(() => {});
});

function messages(file: string, rule: string): string[] {
  const result = results.get(file);
  if (!result) throw new Error(`${file} was not linted`);
  return result.messages.filter((message) => message.ruleId === rule).map((message) => message.message);
}

describe("the dependency rule, in lint", () => {
  it.each(Object.entries(PROBES))("%s", (name, probe) => {
    const refusals = messages(pathOf(name, probe.dir), "no-restricted-imports");
    if (probe.refused) expect(refusals).toHaveLength(1);
    else expect(refusals).toEqual([]);
  });

  it("says why an import is refused", () => {
    expect(messages(pathOf("coreImportsConfig", "api/core"), "no-restricted-imports")[0]).toMatch(
      /api\/core is inside them/,
    );
    expect(messages(pathOf("relayImportsApi", "edge-relay"), "no-restricted-imports")[0]).toMatch(
      /the relay imports only contract\/, lib\/ and mail-flow\//,
    );
  });

  it("warns about a source file over 400 lines, not about a test", () => {
    expect(results.get(LONG_SOURCE)?.messages.find((message) => message.ruleId === "max-lines")?.severity).toBe(1);
    expect(messages(LONG_TEST, "max-lines")).toEqual([]);
  });
});
