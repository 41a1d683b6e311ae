// The private Exim harness: it starts on its own port and folders, relays only for an authenticated client, logs
// to its own mainlog, and stops by its daemon's PID.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { skipWithoutExim, startExim, type EximInstance } from "./index.ts";

const run = promisify(execFile);

describe.skipIf(skipWithoutExim("dev/exim/exim.test.ts"))("private Exim", () => {
  let exim: EximInstance;

  beforeAll(async () => {
    exim = await startExim({ authenticators: "" });
  });

  afterAll(async () => {
    await exim?.close();
  });

  it("runs as its exim_user, not root, from its own configuration file", async () => {
    const { stdout } = await run("ps", ["-o", "uid=", "-p", String(exim.pid)]);
    expect(Number(stdout.trim())).toBe(exim.uid);
    expect(exim.uid).not.toBe(0);
    await exim.waitForLog(
      new RegExp(`daemon started: pid=${exim.pid}, .*listening for SMTP on \\[127\\.0\\.0\\.1\\]:${exim.port}`),
    );
  });

  it("refuses to relay for a client that has not authenticated, and logs the refusal in its own mainlog", async () => {
    const args = [
      "--server",
      "127.0.0.1",
      "--port",
      String(exim.port),
      "--from",
      "a@example.com",
      "--to",
      "x@example.net",
    ];
    const out = await run("swaks", args).then(
      (done) => done.stdout,
      (error: { stdout: string }) => error.stdout,
    );
    expect(out).toMatch(/<\*\* 550 relaying needs authentication/);
    await exim.waitForLog(/rejected RCPT <x@example\.net>: relaying needs authentication/);
  });

  it("stops by its daemon's PID and leaves its folder until closed", async () => {
    const pid = exim.pid;
    expect(pid).toBeGreaterThan(0);
    await exim.stop();
    expect(() => process.kill(pid as number, 0)).toThrow();
    expect(existsSync(exim.dir)).toBe(true);
    await exim.close();
    expect(existsSync(exim.dir)).toBe(false);
  });
});
