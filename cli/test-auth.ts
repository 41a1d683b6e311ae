/**
 * `smtpgate test-auth`: AsyncOS's "Test Query" for SMTP AUTH. Runs the decision the API would make for a user name
 * and password on a listener, against the real directories, and prints every step: the filter after token
 * substitution with its base and scope, which host answered in how many ms, the entries found, the bind and its
 * result, the allowance query and its result, then the verdict with the SMTP reply.
 */
import { authRequestSchema } from "../contract/requests.ts";
import { configPath, environment, EXIT, parseCommandLine, required, UsageError } from "./command.ts";
import { tracedGate } from "./decision-trace.ts";
import { readPassword } from "./password.ts";
import { printTrial } from "./trace-report.ts";

export const HELP = `usage: smtpgate test-auth [--config FILE] --listener NAME --user NAME [--mechanism PLAIN|LOGIN]
                          [--authzid ID] [--env-file FILE]

Runs an SMTP AUTH decision for --user on --listener as "smtpgate api" would (no decision cache, no metrics, no
log line) and prints each step: the search filter after token substitution, base and scope, which directory host
answered in how many ms, the entries found, the bind as the user and its result, the allowance filter and its
result, and the verdict with the SMTP reply the client would get. On a certificate listener the decision is the
one for a client that presented no certificate (the AUTH fallback).

The password is read from the terminal without echo, or from the first line of stdin when it is not a terminal;
never from the command line. The directories' service passwords come from the environment, as for the API (the
API tokens are not needed).

Options:
  -c, --config FILE     the API's configuration; default: $SMTPGATE_CONFIG
  -l, --listener NAME   the listener the client connected to
  -u, --user NAME       the user name as the client would send it
  --mechanism MECH      PLAIN (default) or LOGIN
  --authzid ID          PLAIN's authorization identity (another user's is refused)
  --env-file FILE       read secrets from NAME=value lines too
  -h, --help            this help

Exit status: 0 allowed; 1 denied; 2 usage or configuration error (an unknown listener too); 3 the directory could
not answer (the API would answer 454 4.7.0).
`;

export async function run(argv: string[]): Promise<number> {
  const { values, help } = parseCommandLine(argv, {
    config: { type: "string", short: "c" },
    listener: { type: "string", short: "l" },
    user: { type: "string", short: "u" },
    mechanism: { type: "string" },
    authzid: { type: "string" },
    "env-file": { type: "string" },
  });
  if (help) {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  const listener = required(values.listener, "listener");
  const username = required(values.user, "user");
  const mechanisms = authRequestSchema.shape.mechanism;
  const mechanism = mechanisms.safeParse((values.mechanism ?? "PLAIN").toUpperCase());
  if (!mechanism.success)
    throw new UsageError(`--mechanism: ${values.mechanism} is not one of ${mechanisms.options.join(", ")}`);
  const source = configPath(values.config);
  const traced = await tracedGate(source, environment(values["env-file"]));
  try {
    const listenerConfig = traced.listener(listener);
    const password = await readPassword(`Password for ${username}: `);
    const result = await traced.gate.decideAuth({
      listener,
      mechanism: mechanism.data,
      username,
      password,
      authzid: values.authzid,
      certificate: null,
    });
    const header = [
      `listener    ${listener}: auth profile ${listenerConfig.authProfile}, on allowance failure ${listenerConfig.onAllowanceFailure}`,
      `user        ${username} (AUTH ${mechanism.data})`,
    ];
    return printTrial(header, result, traced, ["user query", "allowance query"]);
  } finally {
    await traced.close();
  }
}
