// The demo writes its API configuration to files and prints `smtpgate check` and `smtpgate test-auth` lines: run
// exactly those lines (through a shell, from the checkout) against a throw-away directory like the demo's.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeDemoConfig, type DemoConfigFiles } from "../../dev/demo-config.ts";
import { startDirectoryWithPki, type DirectoryWithPki } from "../../dev/directory-with-pki.ts";

const ROOT = join(import.meta.dirname, "..", "..");
let directory: DirectoryWithPki;
let folder: string;
let demo: DemoConfigFiles;

beforeAll(async () => {
  directory = await startDirectoryWithPki();
  folder = await mkdtemp(join(tmpdir(), "smtpgate-demo-config-"));
  demo = await writeDemoConfig(directory, folder, {
    apiToken: "demo-token",
    apiPort: 8787,
    cwd: ROOT,
    smtpgate: `${process.execPath} cli/main.ts`,
  });
});
afterAll(async () => {
  await directory?.close();
  if (folder) await rm(folder, { recursive: true, force: true });
});

/** Runs a line through bash, asynchronously: the directory's CRL server answers from this process. */
function shell(line: string): Promise<{ status: number | null; stdout: string }> {
  return new Promise((resolve) => {
    execFile("bash", ["-c", line], { cwd: ROOT, timeout: 20_000, env: { PATH: process.env.PATH } }, (error, stdout) =>
      resolve({ status: error ? ((error as { code?: number }).code ?? null) : 0, stdout }),
    );
  });
}

describe("the demo's config files and the commands it prints", () => {
  it("keeps the secrets out of the config file and in an environment file only its owner reads", async () => {
    expect(await readFile(demo.config, "utf8")).not.toContain("demo-token");
    expect((await stat(demo.env)).mode & 0o077).toBe(0);
  });

  it("passes smtpgate check --connect", async () => {
    const run = await shell(demo.commands.check);
    expect(run.stdout).toContain("schema   ok");
    expect(run.status).toBe(0);
  });

  it("lets alice in with test-auth and shows the steps, and refuses bob (not in smtp-users)", async () => {
    const alice = await shell(demo.commands.testAuth);
    expect(alice.stdout).toMatch(/allowance query/);
    expect(alice.status).toBe(0);
    const bob = await shell(demo.commands.testAuthDenied);
    expect(bob.stdout).toMatch(/allowance-failed/);
    expect(bob.status).toBe(1);
  });
});
