// `smtpgate api` with a fronts: section, reloaded by SIGHUP the way an administrator moves a socket: the front
// comes up at its new address and answers decisions there, the old address is let go, and a new address that
// cannot be taken (already in use) leaves the previous front serving, logged.
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../dev/ports.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";
import { connectLineClient } from "./dovecot-sasl-support.ts";

const CLI = new URL("../../cli/main.ts", import.meta.url).pathname;

let dir: string;
let slapd: SlapdInstance;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "smtpgate-fronts-reload-"));
  slapd = await startSlapd();
});

afterAll(async () => {
  await slapd?.close();
  await rm(dir, { recursive: true, force: true });
});

function config(saslPort: number): string {
  return `directories:
  corp:
    hosts: [${slapd.ldapUrl}]
    tls: { caFile: ${slapd.pki.caFile} }
    bind: { dn: "${SEED.serviceDn}", password: { env: BIND_PW } }
    baseDn: ${SEED.baseDn}
smtpAuthQueries:
  q: { directory: corp, filter: "(uid={u})", method: bind }
authProfiles:
  corp: { type: ldap, query: q }
listeners:
  password: { authProfile: corp }
api:
  tokens: [{ env: API_TOKEN }]
fronts:
  dovecotSasl:
    - { listen: "127.0.0.1:${saslPort}", listener: password }
`;
}

/** alice's PLAIN request over the Dovecot protocol at `port`: the server's answer line. */
async function authenticateAlice(port: number): Promise<string> {
  const client = await connectLineClient({ port });
  try {
    client.send("VERSION\t1\t2\nCPID\t4242\n");
    await client.next("DONE");
    const response = Buffer.from(`\0alice\0${SEED.users.alice.password}`).toString("base64");
    client.send(`AUTH\t1\tPLAIN\tservice=smtp\trip=192.0.2.7\tresp=${response}\n`);
    return await client.next("OK\t1");
  } finally {
    client.close();
  }
}

async function refused(port: number): Promise<boolean> {
  try {
    (await connectLineClient({ port })).close();
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ECONNREFUSED";
  }
}

describe("the fronts on SIGHUP", () => {
  it("move to a changed address, and stay where they are when the new one cannot be taken", async () => {
    const path = join(dir, "smtpgate.yaml");
    const [apiPort, first, second] = await Promise.all([freePort(), freePort(), freePort()]);
    await writeFile(path, config(first));
    const child = spawn(process.execPath, [CLI, "api", "--config", path, "--port", String(apiPort)], {
      env: { PATH: process.env.PATH ?? "", BIND_PW: SEED.servicePassword, API_TOKEN: "reload-test-token" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    let taken: Server | undefined;
    try {
      await expect.poll(() => stdout, { timeout: 15_000 }).toContain(`"front":"dovecot-sasl"`);
      expect(await authenticateAlice(first)).toBe("OK\t1\tuser=alice");

      await writeFile(path, config(second));
      child.kill("SIGHUP");
      await expect.poll(() => stdout, { timeout: 15_000 }).toContain('"msg":"configuration reloaded"');
      expect(await authenticateAlice(second)).toBe("OK\t1\tuser=alice");
      expect(await refused(first)).toBe(true);

      // Something else holds the next address: the reload goes through for the rest, the front stays at `second`.
      const busy = await freePort();
      taken = createServer();
      await new Promise<void>((resolve) => taken?.listen(busy, "127.0.0.1", resolve));
      await writeFile(path, config(busy));
      child.kill("SIGHUP");
      await expect.poll(() => stdout, { timeout: 15_000 }).toContain("the previous ones serve");
      expect(await authenticateAlice(second)).toBe("OK\t1\tuser=alice");
    } finally {
      child.kill("SIGTERM");
      taken?.close();
    }
    expect(await exited).toBe(0);
    expect(stdout).not.toContain(SEED.users.alice.password);
  });
});
