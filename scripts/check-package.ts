/**
 * The package installs and runs, as a user would get it: `npm pack` (which builds dist/node/ through prepack),
 * `npm install` of the tarball into an empty directory, then the installed `smtpgate` command:
 *
 * - the tarball holds the compiled JavaScript, declarations and the bin shim, and no TypeScript source or test;
 * - `npx smtpgate --help` and `--version`;
 * - `smtpgate check --schema-only` on the example configs it ships, and a full `check` naming a missing file;
 * - against a throw-away slapd: `check --connect`, and `test-auth` allowing one password and denying another;
 * - the declarations of the public exports, compiled by a consumer;
 * - an older Node.js (the machine's /usr/bin/node, when it is one) stopped by the version check with exit 2.
 *
 *   node scripts/check-package.ts        exit 1 when any check fails
 */
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { slapdDirectory } from "../dev/api.ts";
import { SEED, startSlapd, type SlapdInstance } from "../dev/slapd/index.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const execFileAsync = promisify(execFile);
const problems: string[] = [];
const notes: string[] = [];
let checks = 0;

function check(ok: boolean, what: string, detail = ""): void {
  checks += 1;
  if (!ok) problems.push(`${what}${detail ? `: ${detail}` : ""}`);
}

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; never throws for a non-zero exit. */
function runCommand(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string>; input?: string } = {},
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? root,
      env: { ...process.env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(options.input ?? "");
  });
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "smtpgate-package-"));
  let slapd: SlapdInstance | undefined;
  try {
    // npm pack runs prepack (npm run build) first.
    const packed = await runCommand("npm", ["pack", "--json", "--pack-destination", work]);
    check(packed.code === 0, "npm pack", packed.stderr.trim().split("\n").slice(-3).join(" "));
    if (packed.code !== 0) return;
    const [tarball] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("["))) as {
      filename: string;
      files: { path: string }[];
    }[];
    if (!tarball) throw new Error("npm pack printed no package");
    const files = tarball.files.map((file) => file.path);
    for (const wanted of [
      "bin/smtpgate.js",
      "dist/node/cli/main.js",
      "dist/node/api/runtime/node/main.js",
      "package.json",
    ])
      check(files.includes(wanted), `the tarball holds ${wanted}`);
    const sources = files.filter((path) => path.endsWith(".ts") && !path.endsWith(".d.ts"));
    check(
      sources.length === 0,
      "the tarball holds no TypeScript source (Node will not run it from node_modules)",
      sources.slice(0, 5).join(", "),
    );
    check(!files.some((path) => /\.test\.|^test\//.test(path)), "the tarball holds no tests");

    const prefix = join(work, "install");
    const installed = await runCommand("npm", [
      "install",
      "--prefix",
      prefix,
      "--omit=dev",
      "--prefer-offline",
      "--no-audit",
      "--no-fund",
      join(work, tarball.filename),
    ]);
    check(installed.code === 0, "npm install of the tarball", installed.stderr.trim().split("\n").slice(-3).join(" "));
    if (installed.code !== 0) return;
    const packageDir = join(prefix, "node_modules", "smtpgate");
    const smtpgate = join(prefix, "node_modules", ".bin", "smtpgate");

    const help = await runCommand("npx", ["--no-install", "smtpgate", "--help"], { cwd: prefix });
    check(help.code === 0 && help.stdout.includes("usage: smtpgate <command>"), "npx smtpgate --help", help.stderr);
    const version = await runCommand(smtpgate, ["--version"]);
    const manifest = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as {
      version: string;
      engines: { node: string };
    };
    check(
      version.stdout.trim() === `smtpgate ${manifest.version}`,
      "smtpgate --version",
      version.stdout + version.stderr,
    );
    for (const command of ["check", "test-auth", "test-cert", "cert inspect", "token new", "api", "relay"]) {
      const ran = await runCommand(smtpgate, [...command.split(" "), "--help"]);
      check(ran.code === 0 && ran.stdout.startsWith("usage: smtpgate"), `smtpgate ${command} --help`, ran.stderr);
    }
    const unknown = await runCommand(smtpgate, ["check", "--no-such-option"]);
    check(
      unknown.code === 2 &&
        unknown.stderr.split("\n").filter(Boolean).length === 2 &&
        !unknown.stderr.includes("    at "),
      "an unknown option: a one-line error and the usage, exit 2",
      unknown.stderr,
    );

    const examples = ["flow-a.yaml", "flow-b.yaml", "flow-c.yaml"].map((name) =>
      join(packageDir, "infra", "config", name),
    );
    const schema = await runCommand(smtpgate, ["check", "--schema-only", ...examples]);
    check(schema.code === 0, "smtpgate check --schema-only on the example configs", schema.stdout + schema.stderr);
    const full = await runCommand(smtpgate, ["check", examples[1] as string]);
    check(
      full.code === 2 && full.stdout.includes("directories.corp.tls.caFile: cannot read /etc/smtpgate/corp-ca.pem"),
      "smtpgate check on flow-b.yaml names the CA file it cannot read, exit 2",
      full.stdout + full.stderr,
    );

    slapd = await startSlapd();
    const config = join(work, "smtpgate.yaml");
    const document = {
      directories: { corp: slapdDirectory(slapd) },
      smtpAuthQueries: {
        q: { directory: "corp", allowance: { filter: `(&(uid={u})(memberOf=${SEED.smtpUsersGroupDn}))` } },
      },
      authProfiles: { corp: { type: "ldap", query: "q" } },
      listeners: { submission: { authProfile: "corp" } },
      api: { tokens: [{ env: "API_TOKEN" }] },
    };
    await writeFile(config, JSON.stringify(document, null, 2));
    const env = { BIND_PW: SEED.servicePassword, API_TOKEN: "package-check-token" };
    const connect = await runCommand(smtpgate, ["check", "--connect", config], { env });
    check(connect.code === 0, "smtpgate check --connect against a throw-away slapd", connect.stdout + connect.stderr);
    const testAuth = ["test-auth", "--config", config, "--listener", "submission", "--user", "alice"];
    const allowed = await runCommand(smtpgate, testAuth, { env, input: `${SEED.users.alice.password}\n` });
    check(
      allowed.code === 0 &&
        /^verdict +allow/m.test(allowed.stdout) &&
        !allowed.stdout.includes(SEED.users.alice.password),
      "smtpgate test-auth allows alice's password (and never prints it)",
      allowed.stdout + allowed.stderr,
    );
    const denied = await runCommand(smtpgate, testAuth, { env, input: "wrong-password\n" });
    check(
      denied.code === 1 && /^verdict +deny/m.test(denied.stdout),
      "smtpgate test-auth denies a wrong password, exit 1",
      denied.stdout + denied.stderr,
    );

    await checkImageLayout(join(work, tarball.filename), join(work, "image"));
    await checkDeclarations(prefix);
    await checkOldNode(join(packageDir, "bin", "smtpgate.js"), manifest.engines.node);
  } finally {
    await slapd?.close();
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * What the Dockerfiles do (no Docker engine here): the tarball unpacked, its production dependencies installed
 * from the repository's lock file with npm ci, then the bin run from there.
 */
async function checkImageLayout(tarball: string, dir: string): Promise<void> {
  await mkdir(dir);
  const unpacked = await runCommand("tar", ["-xzf", tarball, "--strip-components=1", "-C", dir]);
  await copyFile(join(root, "package-lock.json"), join(dir, "package-lock.json"));
  const ci = await runCommand(
    "npm",
    ["ci", "--omit=dev", "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund"],
    {
      cwd: dir,
    },
  );
  check(
    unpacked.code === 0 && ci.code === 0,
    "the image layout: tarball unpacked, npm ci --omit=dev with the lock file",
    unpacked.stderr + ci.stderr,
  );
  const relay = await runCommand(process.execPath, [join(dir, "bin", "smtpgate.js"), "relay", "--help"], { cwd: dir });
  check(
    relay.code === 0 && relay.stdout.startsWith("usage: smtpgate relay"),
    "the image layout runs node bin/smtpgate.js relay",
    relay.stderr,
  );
}

/** A consumer's TypeScript, against the installed package's exports (types from the repository's @types/node). */
async function checkDeclarations(prefix: string): Promise<void> {
  await writeFile(
    join(prefix, "consumer.ts"),
    `import type { Verdict } from "smtpgate/contract/verdict";
import { parseConfig } from "smtpgate/api/config";
import { startApiServer } from "smtpgate/api/server";
import { run } from "smtpgate/cli";
export const used: [Verdict | null, typeof parseConfig, typeof startApiServer, typeof run] = [null, parseConfig, startApiServer, run];
`,
  );
  await writeFile(
    join(prefix, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        module: "nodenext",
        moduleResolution: "nodenext",
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: ["node"],
        typeRoots: [join(root, "node_modules", "@types")],
      },
      files: ["consumer.ts"],
    }),
  );
  const compiled = await runCommand(process.execPath, [
    join(root, "node_modules", "typescript", "bin", "tsc"),
    "-p",
    prefix,
  ]);
  check(compiled.code === 0, "the exports' declarations compile in a consumer", compiled.stdout + compiled.stderr);
}

/** The version check, on a Node.js older than engines.node, when this machine has one at /usr/bin/node. */
async function checkOldNode(shim: string, engines: string): Promise<void> {
  const [wantedMajor = 0, wantedMinor = 0] = (/(\d+)\.(\d+)/.exec(engines) ?? []).slice(1).map(Number);
  const old = "/usr/bin/node";
  if (!existsSync(old)) {
    notes.push("no /usr/bin/node here: the version check was not run on an old Node.js");
    return;
  }
  const { stdout } = await execFileAsync(old, ["--version"]);
  const [major = 0, minor = 0] = stdout.trim().slice(1).split(".").map(Number);
  if (major > wantedMajor || (major === wantedMajor && minor >= wantedMinor)) {
    notes.push(`/usr/bin/node is ${stdout.trim()}: the version check was not run on an old Node.js`);
    return;
  }
  const ran = await runCommand(old, [shim, "--help"]);
  check(
    ran.code === 2 &&
      ran.stderr.includes(`smtpgate: needs Node.js ${wantedMajor}.${wantedMinor} or newer`) &&
      !ran.stderr.includes("ERR_"),
    `${old} (${stdout.trim()}) stops at the version check with exit 2`,
    ran.stderr,
  );
  notes.push(`version check seen on ${stdout.trim()}`);
}

await main();
for (const note of notes) console.log(`note: ${note}`);
for (const problem of problems) console.error(`problem: ${problem}`);
console.log(`check-package: ${checks} checks, ${problems.length} problems`);
if (problems.length > 0) process.exit(1);
