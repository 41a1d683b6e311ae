// The private Dovecot harness and the Dovecot-protocol client: Dovecot's auth service binds as alice against the
// test slapd, refuses a wrong password, and answers pipelined requests by their ids; with its cache on, a second
// request for alice needs no directory.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectDovecotAuth, type DovecotAuthClient } from "./dovecot-auth-client.ts";
import { startDovecot, type DovecotInstance } from "./dovecot.ts";
import { SEED, startSlapd, type SlapdInstance } from "./slapd/index.ts";

const { alice, bob } = SEED.users;

let slapd: SlapdInstance;
let dovecot: DovecotInstance;
let client: DovecotAuthClient;

beforeAll(async () => {
  slapd = await startSlapd();
  dovecot = await startDovecot({ slapd, cacheSize: "1M" });
  client = await connectDovecotAuth({ port: dovecot.authPort, clientIp: "127.0.0.1", noPenalty: true });
});

afterAll(async () => {
  client?.close();
  await dovecot?.close();
  await slapd?.close();
});

describe("private Dovecot", () => {
  it("offers PLAIN in its handshake", () => {
    expect(client.mechanisms).toContain("PLAIN");
  });

  it("authenticates alice by binding as her", async () => {
    expect(await client.plain("alice", alice.password)).toEqual({ ok: true, fields: ["user=alice"] });
  });

  it("refuses a wrong password and an unknown user", async () => {
    expect((await client.plain("alice", "wrong")).ok).toBe(false);
    expect((await client.plain("nobody", "whatever")).ok).toBe(false);
  });

  it("answers pipelined requests by their ids", async () => {
    const answers = await Promise.all([
      client.plain("alice", alice.password),
      client.plain("bob", "wrong"),
      client.plain("bob", bob.password),
    ]);
    expect(answers.map((answer) => answer.ok)).toEqual([true, false, true]);
  });

  it("answers alice from its cache while the directory is down", async () => {
    await client.plain("alice", alice.password);
    await slapd.stop();
    try {
      expect((await client.plain("alice", alice.password)).ok).toBe(true);
    } finally {
      await slapd.start();
    }
  });

  it("stops by its master's PID and leaves nothing listening", async () => {
    const pid = dovecot.pid as number;
    expect(pid).toBeGreaterThan(0);
    await dovecot.close();
    expect(() => process.kill(pid, 0)).toThrow();
    await expect(connectDovecotAuth({ port: dovecot.authPort })).rejects.toThrow();
  });
});

describe("private Dovecot with auth_bind_userdn", () => {
  it("binds as the DN of the template, with no search first", async () => {
    const direct = await startDovecot({ slapd, bindDnTemplate: `uid=%n,ou=people,${SEED.baseDn}` });
    const directClient = await connectDovecotAuth({ port: direct.authPort, clientIp: "127.0.0.1", noPenalty: true });
    try {
      expect((await directClient.plain("alice", alice.password)).ok).toBe(true);
      expect((await directClient.plain("alice", "wrong")).ok).toBe(false);
      expect(await readFile(join(direct.dir, "dovecot-ldap.conf.ext"), "utf8")).toContain(
        `auth_bind_userdn = uid=%n,ou=people,${SEED.baseDn}`,
      );
    } finally {
      directClient.close();
      await direct.close();
    }
  });
});
