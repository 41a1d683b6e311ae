// The private Postfix harness: it starts on its own port and folders, relays to a sink, logs to its own maillog,
// and stops by its master's PID.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSink, type Sink } from "../sink.ts";
import { privateMasterCf, startPostfix, type PostfixInstance } from "./index.ts";

const run = promisify(execFile);

describe("private Postfix", () => {
  let sink: Sink;
  let postfix: PostfixInstance;

  beforeAll(async () => {
    sink = await startSink();
    postfix = await startPostfix({ relayPort: sink.port });
  });

  afterAll(async () => {
    await postfix?.close();
    await sink?.close();
  });

  it("relays a message from loopback to the sink and logs the session in its own maillog", async () => {
    const { stdout } = await run("swaks", [
      ...["--server", "127.0.0.1", "--port", String(postfix.port)],
      ...["--from", "alice@example.com", "--to", "someone@example.net", "--body", "hello"],
    ]);
    expect(stdout).toMatch(/<- {2}250 2\.0\.0 Ok: queued as/);
    await postfix.waitForLog(/status=sent \(250 .*queued as SINK1\)/, 10_000);
    expect(sink.messages.map((message) => message.to)).toEqual([["someone@example.net"]]);
    expect(postfix.maillog()).toContain(`configuration ${postfix.configDir}`);
  });

  it("takes a reload", async () => {
    await postfix.reload();
    await postfix.waitForLog(/reload -- version 3\./);
  });

  it("stops by its master's PID and leaves its folder until closed", async () => {
    const pid = postfix.pid;
    expect(pid).toBeGreaterThan(0);
    await postfix.stop();
    expect(() => process.kill(pid as number, 0)).toThrow();
    expect(existsSync(postfix.dir)).toBe(true);
    await postfix.close();
    expect(existsSync(postfix.dir)).toBe(false);
  });
});

describe("privateMasterCf", () => {
  it("drops the packaged inet services with their -o lines, turns chroot off and adds the test's smtpd", () => {
    const packaged = [
      "# comment",
      "smtp      inet  n       -       y       -       -       smtpd",
      "  -o smtpd_sasl_auth_enable=yes",
      "pickup    unix  n       -       y       60      1       pickup",
      "relay     unix  -       -       y       -       -       smtp",
      "        -o syslog_name=postfix/$service_name",
    ].join("\n");
    expect(privateMasterCf(packaged, "127.0.0.1:2525\tinet\tn\t-\tn\t-\t1\tsmtpd").split("\n")).toEqual([
      "pickup\tunix\tn\t-\tn\t60\t1\tpickup",
      "relay\tunix\t-\t-\tn\t-\t-\tsmtp",
      "        -o syslog_name=postfix/$service_name",
      "127.0.0.1:2525\tinet\tn\t-\tn\t-\t1\tsmtpd",
      "",
    ]);
  });
});
