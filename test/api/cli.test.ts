// The start command an administrator runs: clear errors for a missing or invalid configuration, and a working
// API for a valid one.
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../dev/ports.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";

const run = promisify(execFile);
const MAIN = new URL("../../api/runtime/node/main.ts", import.meta.url).pathname;

let dir: string;
let slapd: SlapdInstance;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "smtpgate-cli-"));
  slapd = await startSlapd();
});

afterAll(async () => {
  await slapd?.close();
  await rm(dir, { recursive: true, force: true });
});

async function start(
  args: string[],
  env: Record<string, string> = {},
  cwd?: string,
): Promise<{ code: number | null; stderr: string }> {
  try {
    await run(process.execPath, [MAIN, ...args], {
      env: { PATH: process.env.PATH ?? "", ...env },
      timeout: 10_000,
      ...(cwd ? { cwd } : {}),
    });
    return { code: 0, stderr: "" };
  } catch (error) {
    const failure = error as { code: number | null; stderr: string };
    return { code: failure.code, stderr: failure.stderr };
  }
}

function config(hosts: string, caFile = slapd.pki.caFile, password = "{ env: BIND_PW }"): string {
  return `directories:
  corp:
    hosts: [${hosts}]
    tls: { caFile: ${caFile} }
    bind: { dn: "${SEED.serviceDn}", password: ${password} }
    baseDn: ${SEED.baseDn}
smtpAuthQueries:
  q: { directory: corp }
authProfiles:
  corp: { type: ldap, query: q }
listeners:
  submission: { authProfile: corp }
api:
  tokens: [{ env: API_TOKEN }]
`;
}

/** The API as a child process on a free port, with its stdout collected and a client for decide/auth. */
async function spawnApi(path: string) {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN, "--config", path, "--port", String(port)], {
    env: { PATH: process.env.PATH ?? "", BIND_PW: SEED.servicePassword, API_TOKEN: "cli-test-token" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  const decide = async (listener: string, mechanism = "PLAIN"): Promise<unknown> => {
    const response = await fetch(`http://127.0.0.1:${port}/v1/decide/auth`, {
      method: "POST",
      headers: { Authorization: "Bearer cli-test-token" },
      body: JSON.stringify({
        listener,
        client: { ip: "127.0.0.1" },
        mechanism,
        username: "alice",
        password: SEED.users.alice.password,
      }),
    });
    return await response.json();
  };
  return { child, exited, decide, stdout: () => stdout };
}

describe("npm start (api/runtime/node/main.ts)", () => {
  it("exits 2 with usage when no configuration is given", async () => {
    const result = await start([]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("smtpgate: no configuration file given");
    expect(result.stderr).toContain("usage: smtpgate api --config FILE");
  });

  it("exits 2 naming a file that does not exist", async () => {
    const result = await start(["--config", join(dir, "missing.yaml")]);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `smtpgate: ${join(dir, "missing.yaml")}: invalid configuration\n  cannot read ${join(dir, "missing.yaml")}: no such file\n`,
    );
  });

  it("names the absolute path it tried for a relative one, for the configuration and the files it names", async () => {
    const missing = await start(["--config", "missing.yaml"], {}, dir);
    expect(missing.stderr).toContain(`cannot read ${join(dir, "missing.yaml")}: no such file`);
    await writeFile(join(dir, "relative-ca.yaml"), config(slapd.ldapUrl, "certs/ca.pem"));
    const result = await start(["--config", "relative-ca.yaml"], { BIND_PW: "x", API_TOKEN: "y" }, dir);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `directories.corp.tls.caFile: cannot read ${join(dir, "certs/ca.pem")}: no such file`,
    );
  });

  it("explains how to give a secret written inline, without repeating it", async () => {
    const path = join(dir, "inline.yaml");
    await writeFile(path, config(slapd.ldapUrl, slapd.pki.caFile, "hunter2-inline"));
    const result = await start(["--config", path], { API_TOKEN: "y" });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /directories\.corp\.bind\.password: a secret is never written inline: .*\{ env: "NAME" \}/,
    );
    expect(result.stderr).not.toContain("hunter2-inline");
  });

  it("exits 2 naming each invalid value by its path", async () => {
    const path = join(dir, "bad.yaml");
    await writeFile(path, config("ldap://127.0.0.1:1, http://wrong.example"));
    const result = await start(["--config", path], { BIND_PW: "x", API_TOKEN: "y" });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("directories.corp.hosts[1]: not an ldap:// or ldaps:// URL");
  });

  it("exits 2 naming unset secrets", async () => {
    const path = join(dir, "nosecrets.yaml");
    await writeFile(path, config(slapd.ldapUrl));
    const result = await start(["--config", path]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("api.tokens[0]: environment variable API_TOKEN is not set");
    expect(result.stderr).toContain("directories.corp.bind.password: environment variable BIND_PW is not set");
  });

  it("serves decisions with a valid configuration and stops on SIGTERM", async () => {
    const path = join(dir, "good.yaml");
    await writeFile(path, config(slapd.ldapUrl));
    const api = await spawnApi(path);
    try {
      await expect.poll(api.stdout, { timeout: 10_000 }).toContain('"msg":"listening"');
      expect(await api.decide("submission", "LOGIN")).toMatchObject({ verdict: "allow", identity: "alice" });
    } finally {
      api.child.kill("SIGTERM");
    }
    expect(await api.exited).toBe(0);
    expect(api.stdout()).toContain('"msg":"decision"');
    expect(api.stdout()).not.toContain(SEED.users.alice.password);
  });

  it("reloads its configuration on SIGHUP, and refuses an invalid one while keeping the old", async () => {
    const path = join(dir, "reload.yaml");
    await writeFile(path, config(slapd.ldapUrl));
    const api = await spawnApi(path);
    try {
      await expect.poll(api.stdout, { timeout: 10_000 }).toContain('"msg":"listening"');

      await writeFile(path, config("ldap://127.0.0.1:1, http://wrong.example"));
      api.child.kill("SIGHUP");
      await expect.poll(api.stdout, { timeout: 10_000 }).toContain('"msg":"reload refused');
      expect(api.stdout()).toContain(
        '"problems":[{"path":"directories.corp.hosts[1]","message":"not an ldap:// or ldaps:// URL',
      );
      expect(await api.decide("submission")).toMatchObject({ verdict: "allow" });

      await writeFile(
        path,
        config(slapd.ldapUrl).replace("listeners:\n", "listeners:\n  added: { authProfile: corp }\n"),
      );
      api.child.kill("SIGHUP");
      await expect.poll(api.stdout, { timeout: 10_000 }).toContain('"msg":"configuration reloaded"');
      expect(await api.decide("added")).toMatchObject({ verdict: "allow", identity: "alice" });
    } finally {
      api.child.kill("SIGTERM");
    }
    expect(await api.exited).toBe(0);
  });
});
