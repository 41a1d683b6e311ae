// `smtpgate fronts`: the Dovecot-SASL socket as a process of its own, deciding through the real HTTP API (real
// slapd); and the `fronts:` section's validation in the API's configuration.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../api/config/load.ts";
import { slapdDirectory, startTestApi, TEST_TOKEN, type TestApi } from "../dev/api.ts";
import { freePort } from "../dev/ports.ts";
import { startNodeProcess, type NodeProcess } from "../dev/processes.ts";
import { SEED, startSlapd, type SlapdInstance } from "../dev/slapd/index.ts";
import { b64, connectLineClient } from "../test/fronts/dovecot-sasl-support.ts";

const CLI = new URL("../cli/main.ts", import.meta.url).pathname;

const apiConfig = (slapd: SlapdInstance, fronts?: unknown) => ({
  directories: { corp: slapdDirectory(slapd) },
  smtpAuthQueries: { corp: { directory: "corp", filter: "(uid={u})", method: "bind" as const } },
  authProfiles: { corp: { type: "ldap" as const, query: "corp" } },
  listeners: { password: { authProfile: "corp" } },
  api: { tokens: [{ env: "TEST_TOKEN" }] },
  ...(fronts === undefined ? {} : { fronts: fronts as never }),
});

let dir: string;
let slapd: SlapdInstance;
let api: TestApi;
let edge: NodeProcess;
let port: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "smtpgate-edge-"));
  slapd = await startSlapd();
  api = await startTestApi(apiConfig(slapd), { BIND_PW: SEED.servicePassword });
  port = await freePort();
  const file = join(dir, "edge.yaml");
  await writeFile(
    file,
    [
      "api:",
      `  url: ${api.url}`,
      "  token: { env: EDGE_TOKEN }",
      "fronts:",
      "  dovecotSasl:",
      `    - { listen: "127.0.0.1:${port}", listener: password }`,
      "",
    ].join("\n"),
  );
  edge = await startNodeProcess([CLI, "fronts", "--config", file], {
    ready: /"msg":"listening"/,
    logFile: join(dir, "edge.log"),
    env: { EDGE_TOKEN: TEST_TOKEN },
  });
});

afterAll(async () => {
  await edge?.stop();
  await api?.close();
  await slapd?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("smtpgate fronts (edge process)", () => {
  it("answers OK and FAIL from the HTTP API's verdicts", async () => {
    const client = await connectLineClient({ port });
    await client.next("DONE");
    const auth = (id: number, password: string) =>
      `AUTH\t${id}\tPLAIN\tservice=smtp\trip=127.0.0.1\tresp=${b64(`\0alice\0${password}`)}\n`;
    client.send(`VERSION\t1\t0\nCPID\t1\n${auth(1, SEED.users.alice.password)}${auth(2, "wrong")}`);
    expect(await client.next("OK")).toBe("OK\t1\tuser=alice");
    expect(await client.next("FAIL")).toBe("FAIL\t2\tuser=alice\treason=Authentication credentials invalid");
    expect(api.logs).toContainEqual(expect.objectContaining({ user: "alice", verdict: "allow" }));
    client.close();
  });
});

describe("the fronts: section", () => {
  it("names a listener that exists, a host:port or a unix socket with octal mode", () => {
    const config = (fronts: unknown) => () => validateConfig(apiConfig(slapd, fronts), "smtpgate.yaml");
    expect(config({ dovecotSasl: [{ listen: "127.0.0.1:12345", listener: "nope" }] })).toThrow(
      /fronts\.dovecotSasl\[0\]\.listener: no listener named "nope"/,
    );
    expect(config({ dovecotSasl: [{ listen: "127.0.0.1", listener: "password" }] })).toThrow(/fronts\.dovecotSasl/);
    expect(config({ dovecotSasl: [{ listen: { path: "/run/a", mode: 660 }, listener: "password" }] })).toThrow(
      /fronts\.dovecotSasl/,
    );
    expect(
      config({ dovecotSasl: [{ listen: { path: "/run/a", mode: "0640" }, listener: "password" }] })().fronts,
    ).toEqual({ postfixPolicy: [], dovecotSasl: [{ listen: { path: "/run/a", mode: 0o640 }, listener: "password" }] });
    expect(config(undefined)().fronts).toEqual({ dovecotSasl: [], postfixPolicy: [] });
  });
});
