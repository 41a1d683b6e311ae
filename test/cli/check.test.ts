// `smtpgate check`: a configuration judged without starting the API, against the example configs and a
// throw-away slapd. Each failure must name the key that fixes it.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { slapdDirectory } from "../../dev/api.ts";
import { freePort } from "../../dev/ports.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";
import { expectUsageError, smtpgate } from "./run.ts";

const EXAMPLES = ["flow-a.yaml", "flow-b.yaml", "flow-c.yaml"].map(
  (name) => new URL(`../../infra/config/${name}`, import.meta.url).pathname,
);
const ENV = { BIND_PW: SEED.servicePassword, API_TOKEN: "check-test-token" };

let dir: string;
let slapd: SlapdInstance;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "smtpgate-check-"));
  slapd = await startSlapd();
});

afterAll(async () => {
  await slapd?.close();
  await rm(dir, { recursive: true, force: true });
});

/** A configuration for the test slapd (JSON, which is YAML too); `directory` replaces keys of its one directory. */
async function configFile(
  name: string,
  directory: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): Promise<string> {
  const path = join(dir, name);
  const config = {
    directories: { corp: slapdDirectory(slapd, directory) },
    smtpAuthQueries: { q: { directory: "corp", baseDn: SEED.peopleDn } },
    authProfiles: { corp: { type: "ldap", query: "q" } },
    listeners: { submission: { authProfile: "corp" } },
    api: { tokens: [{ env: "API_TOKEN" }] },
    ...extra,
  };
  await writeFile(path, JSON.stringify(config, null, 2));
  return path;
}

describe("smtpgate check", () => {
  it("passes the example configs with --schema-only", async () => {
    const run = await smtpgate(["check", "--schema-only", ...EXAMPLES]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout.match(/ {2}schema {3}ok/g)).toHaveLength(3);
  });

  it("exits 2 naming the file an example config names and this machine lacks", async () => {
    const run = await smtpgate(["check", EXAMPLES[1] as string], { env: ENV });
    expect(run.code).toBe(2);
    expect(run.stdout).toContain("directories.corp.tls.caFile: cannot read /etc/smtpgate/corp-ca.pem: no such file");
  });

  it("exits 2 naming each invalid value by its path", async () => {
    const path = await configFile("bad.yaml", { hosts: ["http://wrong.example"], mode: "sideways" });
    const run = await smtpgate(["check", path], { env: ENV });
    expect(run.code).toBe(2);
    expect(run.stdout).toContain("directories.corp.hosts[0]: not an ldap:// or ldaps:// URL");
    expect(run.stdout).toContain("directories.corp.mode:");
  });

  it("exits 2 naming every unset secret, and never prints a secret's value", async () => {
    const path = await configFile("secrets.yaml");
    const missing = await smtpgate(["check", path]);
    expect(missing.code).toBe(2);
    expect(missing.stdout).toContain("api.tokens[0]: environment variable API_TOKEN is not set");
    expect(missing.stdout).toContain("directories.corp.bind.password: environment variable BIND_PW is not set");

    const envFile = join(dir, "api.env");
    await writeFile(envFile, `BIND_PW=${SEED.servicePassword}\nAPI_TOKEN=check-test-token\n`);
    const set = await smtpgate(["check", "--env-file", envFile, path]);
    expect(set.code).toBe(0);
    expect(set.stdout).toContain("secrets  ok: API_TOKEN, BIND_PW set");
    expect(set.stdout).not.toContain(SEED.servicePassword);
  });

  it("binds with the service identity and searches each query's base on every host with --connect", async () => {
    const path = await configFile("good.yaml", { hosts: [slapd.ldapUrl, slapd.ldapsUrl] });
    const run = await smtpgate(["check", "--connect", path], { env: ENV });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    for (const url of [slapd.ldapUrl, slapd.ldapsUrl])
      expect(run.stdout).toMatch(new RegExp(`${url} +(StartTLS|LDAPS), bind as ${SEED.serviceDn}: ok in \\d+ ms`));
    expect(run.stdout).toMatch(/base search ou=people,dc=example,dc=com \(smtpAuthQueries\.q\.baseDn\): ok in \d+ ms/);
  });

  it("names bind.dn and the secret for LDAP result 49", async () => {
    const path = await configFile("wrong-password.yaml");
    const run = await smtpgate(["check", "--connect", path], { env: { ...ENV, BIND_PW: "not-the-password" } });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain("refused: invalid credentials (49)");
    expect(run.stdout).toContain("fix: check directories.corp.bind.dn and the password in BIND_PW");
  });

  it("names tls.serverName for a certificate made out to another name, and tls.caFile for an unknown CA", async () => {
    const wrongName = await configFile("wrong-name.yaml", {
      tls: { caFile: slapd.pki.caFile, serverName: "wrong.example" },
    });
    const name = await smtpgate(["check", "--connect", wrongName], { env: ENV });
    expect(name.code).toBe(1);
    expect(name.stdout).toContain("set directories.corp.tls.serverName to a name it carries");

    const noCa = await configFile("no-ca.yaml", { hosts: [slapd.ldapsUrl], tls: {} });
    const ca = await smtpgate(["check", "--connect", noCa], { env: ENV });
    expect(ca.code).toBe(1);
    expect(ca.stdout).toContain("set directories.corp.tls.caFile to the CA that signed it");
  });

  it("names the base DN key when the base does not exist", async () => {
    const path = await configFile(
      "no-base.yaml",
      {},
      {
        certificateQueries: { c: { directory: "corp", baseDn: `ou=nowhere,${SEED.baseDn}`, filter: "(mail={email})" } },
      },
    );
    const run = await smtpgate(["check", "--connect", path], { env: ENV });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(
      `fix: certificateQueries.c.baseDn: ou=nowhere,${SEED.baseDn} does not exist on this server`,
    );
  });

  it("exits 3 when a host cannot be reached, naming the hosts key", async () => {
    const port = await freePort();
    const path = await configFile("down.yaml", { hosts: [`ldap://127.0.0.1:${port}`] });
    const run = await smtpgate(["check", "--connect", path], { env: ENV });
    expect(run.code).toBe(3);
    expect(run.stdout).toContain(`ldap://127.0.0.1:${port}  StartTLS, bind as ${SEED.serviceDn}: FAILED after`);
    expect(run.stdout).toContain("check directories.corp.hosts");
  });

  it("answers an unknown option with one line and the usage, exit 2", async () => {
    expectUsageError(await smtpgate(["check", "--conect", "x.yaml"]), "check", "Unknown option '--conect'");
    expectUsageError(await smtpgate(["check"]), "check", "missing FILE");
  });
});
