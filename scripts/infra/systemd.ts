// systemd units: hardening keys, the built package's command, and systemd-analyze verify where present.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { infra, notes, check, filesUnder, rel } from "./context.ts";
import { INSTALLED_PACKAGE, checkPackageCommand } from "./dockerfiles.ts";

const execFileAsync = promisify(execFile);

export async function checkSystemdUnits(): Promise<void> {
  const units = await filesUnder(join(infra, "systemd"), (name) => name.endsWith(".service"));
  check(units.length >= 2, "infra/systemd", "a unit each for the API and the relay");
  for (const file of units) {
    const where = rel(file);
    const settings = new Map<string, string[]>();
    for (const line of (await readFile(file, "utf8")).split("\n")) {
      const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
      if (match) settings.set(match[1] as string, [...(settings.get(match[1] as string) ?? []), match[2] as string]);
    }
    const value = (key: string): string | undefined => settings.get(key)?.at(-1);
    check(
      value("DynamicUser") === "yes" || (value("User") ?? "root") !== "root",
      where,
      "DynamicUser=yes or a dedicated User=",
    );
    for (const [key, wanted] of [
      ["NoNewPrivileges", "yes"],
      ["ProtectSystem", "strict"],
      ["ProtectHome", "yes"],
      ["PrivateTmp", "yes"],
      ["PrivateDevices", "yes"],
    ] as const) {
      check(value(key) === wanted, where, `${key}=${wanted}`);
    }
    check(settings.has("EnvironmentFile"), where, "secrets from an EnvironmentFile");
    checkPackageCommand(value("ExecStart")?.split(/\s+/) ?? [], INSTALLED_PACKAGE, where, "ExecStart");
  }

  try {
    await execFileAsync("systemd-analyze", ["--version"]);
  } catch {
    notes.push("systemd units: systemd-analyze is not installed here; keys checked statically only");
    return;
  }
  let output: string;
  try {
    // Unknown keys are only warnings (exit 0): any output at all counts.
    const { stdout, stderr } = await execFileAsync("systemd-analyze", ["verify", "--man=no", ...units]);
    output = `${stdout}${stderr}`;
  } catch (error) {
    output = `${(error as { stdout?: string }).stdout ?? ""}${(error as { stderr?: string }).stderr ?? ""}`;
  }
  const lines = output.split("\n").filter((line) => line.trim() !== "");
  // The units name /usr/bin/node and /opt/smtpgate: where this machine has no /usr/bin/node, that line is expected.
  const real = lines.filter(
    (line) => !(/Command \/usr\/bin\/node is not executable/.test(line) && !existsSync("/usr/bin/node")),
  );
  check(real.length === 0, "infra/systemd", `systemd-analyze verify: ${real.join("; ")}`);
  if (real.length === 0)
    notes.push(
      `systemd units: systemd-analyze verify passed${lines.length > 0 ? " (apart from /usr/bin/node missing on this machine)" : ""}`,
    );
}
