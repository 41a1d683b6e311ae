// `smtpgate test-auth`: the real SMTP AUTH decision against a throw-away slapd, with every step printed, the
// password read from stdin only, and no decision cache involved.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tracedGate } from "../../cli/decision-trace.ts";
import { slapdDirectory } from "../../dev/api.ts";
import { freePort } from "../../dev/ports.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";
import { expectUsageError, smtpgate } from "./run.ts";

const ENV = { BIND_PW: SEED.servicePassword };
const ALLOWANCE = `(&(uid={u})(memberOf=${SEED.smtpUsersGroupDn}))`;

let dir: string;
let slapd: SlapdInstance;
let config: string;
let downConfig: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "smtpgate-test-auth-"));
  slapd = await startSlapd();
  const write = async (name: string, hosts: string): Promise<string> => {
    const path = join(dir, name);
    // The profile's cache is on: a trial decision must not use it.
    const config = {
      directories: { corp: slapdDirectory(slapd, { hosts: [hosts], connectTimeoutMs: 1000 }) },
      smtpAuthQueries: {
        q: { directory: "corp", baseDn: SEED.peopleDn, filter: "(uid={u})", allowance: { filter: ALLOWANCE } },
      },
      authProfiles: { corp: { type: "ldap", query: "q", cache: { positiveTtlSeconds: 300, negativeTtlSeconds: 60 } } },
      listeners: { submission: { authProfile: "corp" } },
      api: { tokens: [{ env: "API_TOKEN" }] },
    };
    await writeFile(path, JSON.stringify(config, null, 2));
    return path;
  };
  config = await write("smtpgate.yaml", slapd.ldapUrl);
  downConfig = await write("down.yaml", `ldap://127.0.0.1:${await freePort()}`);
});

afterAll(async () => {
  await slapd?.close();
  await rm(dir, { recursive: true, force: true });
});

const testAuth = (user: string, password: string, path = config) =>
  smtpgate(["test-auth", "--config", path, "--listener", "submission", "--user", user], {
    env: ENV,
    input: `${password}\n`,
  });

describe("smtpgate test-auth", () => {
  it("allows alice and prints each step: the filled filters, base, scope, host and time, entries, bind, allowance", async () => {
    const run = await testAuth("alice", SEED.users.alice.password);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const out = run.stdout;
    expect(out).toMatch(
      /^user query \(directory corp\)\n {2}base {6}ou=people,dc=example,dc=com\n {2}scope {5}sub\n {2}filter {4}\(uid=alice\)$/m,
    );
    expect(out).toMatch(new RegExp(`host {6}${slapd.ldapUrl} answered in \\d+ ms`));
    expect(out).toContain(`found     1 entry\n            ${SEED.users.alice.dn}`);
    expect(out).toContain(`bind as the user (directory corp)\n  dn        ${SEED.users.alice.dn}`);
    expect(out).toContain("result    accepted: the password is right");
    expect(out).toContain(`allowance query (directory corp)`);
    expect(out).toContain(`filter    (&(uid=alice)(memberOf=${SEED.smtpUsersGroupDn}))`);
    expect(out).toMatch(
      /^verdict +allow \(reason ok\)\n {2}smtp {6}235 2\.7\.0 Authentication succeeded\n {2}identity {2}alice$/m,
    );
    expect(out).not.toContain(SEED.users.alice.password);
  });

  it("exits 1 when the allowance query finds nothing", async () => {
    const run = await testAuth("bob", SEED.users.bob.password);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain("found     0 entries");
    expect(run.stdout).toMatch(/^verdict +deny \(reason allowance-failed\)\n {2}smtp {6}535 5\.7\.8/m);
  });

  it("shows the directory refusing a wrong password, and never the password", async () => {
    const run = await testAuth("alice", "wrong-password");
    expect(run.code).toBe(1);
    expect(run.stdout).toContain("result    refused: invalid credentials (49): a wrong password");
    expect(run.stdout).toMatch(/^verdict +deny \(reason invalid-credentials\)/m);
    expect(run.stdout).not.toContain("wrong-password");
  });

  it("builds its gate with the profile's cache off, so every trial asks the directory", async () => {
    // In-process: one gate, two decisions; with the configured cache on, the second would be a hit.
    const traced = await tracedGate(config, ENV);
    try {
      expect(traced.gate.cacheStats().corp).toMatchObject({ enabled: false });
      const request = { listener: "submission", mechanism: "PLAIN" as const, username: "alice", certificate: null };
      for (let attempt = 0; attempt < 2; attempt += 1)
        await traced.gate.decideAuth({ ...request, password: SEED.users.alice.password });
      expect(traced.trace.steps.filter((step) => step.kind === "bind")).toHaveLength(2);
    } finally {
      await traced.close();
    }
  });

  it("exits 3 with the failed host and its fix when the directory cannot be reached", async () => {
    const run = await testAuth("alice", SEED.users.alice.password, downConfig);
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(/host {6}ldap:\/\/127\.0\.0\.1:\d+ FAILED after \d+ ms/);
    expect(run.stdout).toContain("fix: nothing listens on 127.0.0.1:");
    expect(run.stdout).toMatch(/^verdict +tempfail \(reason directory-unavailable\)\n {2}smtp {6}454 4\.7\.0/m);
  });

  it("refuses an empty password without asking the directory", async () => {
    const run = await testAuth("alice", "");
    expect(run.code).toBe(1);
    expect(run.stdout).not.toContain("user query");
    expect(run.stdout).toMatch(/^verdict +deny \(reason empty-password\)/m);
  });

  it("takes no password from the command line, and names unknown listeners", async () => {
    expectUsageError(
      await smtpgate([
        "test-auth",
        "--config",
        config,
        "--listener",
        "submission",
        "--user",
        "alice",
        "--password",
        "x",
      ]),
      "test-auth",
      "Unknown option '--password'",
    );
    const unknown = await smtpgate(["test-auth", "--config", config, "--listener", "nope", "--user", "alice"], {
      env: ENV,
      input: "x\n",
    });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--listener: no listener named "nope"');
  });

  it("exits 2 naming the service password it needs, but not the API token", async () => {
    const run = await smtpgate(["test-auth", "--config", config, "--listener", "submission", "--user", "alice"], {
      input: "x\n",
    });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("directories.corp.bind.password: environment variable BIND_PW is not set");
    expect(run.stderr).not.toContain("API_TOKEN");
  });
});
