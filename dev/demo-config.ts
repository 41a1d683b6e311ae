// The demo's API configuration as files an administrator can read and try the `smtpgate` command on: the config
// the running API serves (YAML) and an environment file with the secrets it names, plus the command lines that
// work against them while the demo runs.
import { writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { stringify } from "yaml";
import { SEED } from "./slapd/index.ts";
import { stackApiConfig, type Stack } from "./stack.ts";

export interface DemoConfigFiles {
  config: string;
  env: string;
  /** Shell lines that run `smtpgate check` and `smtpgate test-auth` against the files, from `cwd`. */
  commands: { check: string; testAuth: string; testAuthDenied: string };
}

export async function writeDemoConfig(
  stack: Pick<Stack, "slapd" | "pki" | "crls">,
  folder: string,
  options: { apiToken: string; apiPort: number; cwd: string; smtpgate?: string },
): Promise<DemoConfigFiles> {
  const config = stackApiConfig(stack.slapd, stack.pki, stack.crls.baseUrl);
  const document = { ...config, api: { ...config.api, listen: { host: "127.0.0.1", port: options.apiPort } } };
  const configFile = join(folder, "smtpgate.yaml");
  const envFile = join(folder, "api.env");
  await writeFile(
    configFile,
    `# The demo API's configuration (written by npm run demo; gone with the next run).\n${stringify(document)}`,
  );
  await writeFile(
    envFile,
    `BIND_PW=${SEED.servicePassword}\nTEST_TOKEN=${options.apiToken}\nTEST_TOKEN_NEXT=${options.apiToken}\n`,
    { mode: 0o600 },
  );
  const smtpgate = options.smtpgate ?? "scripts/node-env npm run --silent smtpgate --";
  const files = `--env-file ${relative(options.cwd, envFile)}`;
  const path = relative(options.cwd, configFile);
  const testAuth = (user: string, password: string) =>
    `printf '%s\\n' ${password} | ${smtpgate} test-auth --config ${path} ${files} --listener password --user ${user}`;
  return {
    config: configFile,
    env: envFile,
    commands: {
      check: `${smtpgate} check --connect ${files} ${path}`,
      testAuth: testAuth("alice", "alice-password"),
      testAuthDenied: testAuth("bob", "bob-password"),
    },
  };
}
