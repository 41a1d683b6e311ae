// The `smtpgate` dispatcher: help on every subcommand, the exit statuses documented, unknown words refused in one
// line.
import { describe, expect, it } from "vitest";
import { smtpgate } from "./run.ts";

const SUBCOMMANDS = ["check", "test-auth", "test-cert", "cert inspect", "token new", "api", "relay"];

describe("smtpgate", () => {
  it("lists every command and the exit statuses in --help", async () => {
    const run = await smtpgate(["--help"]);
    expect(run.code).toBe(0);
    for (const command of SUBCOMMANDS) expect(run.stdout).toContain(`\n  ${command} `);
    expect(run.stdout).toMatch(
      /Exit status:\n {2}0 +ok\n {2}1 +the check or test found a problem.*\n {2}2 +usage or configuration error.*\n {2}3 +a directory or CRL source could not answer/,
    );
  });

  it.each(SUBCOMMANDS)("prints the help of %s, with its exit statuses", async (command) => {
    const run = await smtpgate([...command.split(" "), "--help"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^usage: smtpgate ${command}`));
    expect(run.stdout).toContain("Exit status:");
    expect(await smtpgate(["help", ...command.split(" ")])).toMatchObject({ code: 0, stdout: run.stdout });
  });

  it("exits 2 with the usage when no command is given", async () => {
    const run = await smtpgate([]);
    expect(run.code).toBe(2);
    expect(run.stdout).toContain("usage: smtpgate <command> [options]");
  });

  it("refuses an unknown command or subcommand in one line", async () => {
    const unknown = await smtpgate(["frobnicate"]);
    expect(unknown).toMatchObject({ code: 2 });
    expect(unknown.stderr).toBe('smtpgate: unknown command "frobnicate"\nRun "smtpgate --help" for the commands.\n');
    const sub = await smtpgate(["token", "old"]);
    expect(sub.code).toBe(2);
    expect(sub.stderr).toContain('smtpgate: token: unknown subcommand "old" (token new)');
  });

  it("passes the API's own start-up errors through: no configuration, exit 2", async () => {
    const run = await smtpgate(["api"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("smtpgate: no configuration file given\nusage: smtpgate api --config FILE");
  });
});
