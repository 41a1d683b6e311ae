/**
 * `smtpgate test-cert`: AsyncOS's "Test Query" for client certificates. Runs the decision the API would make at
 * STARTTLS for a certificate on a listener, and prints every step: the path to a trust anchor (or the check that
 * failed), each revocation check with the CRL that answered, the certificate query after token substitution, which
 * host answered in how many ms and the entries found, then the verdict with the SMTP reply.
 */
import { readCertificates, requestChain } from "./certificate-files.ts";
import { configPath, environment, EXIT, parseCommandLine, required, UsageError } from "./command.ts";
import { tracedGate } from "./decision-trace.ts";
import { printTrial } from "./trace-report.ts";

export const HELP = `usage: smtpgate test-cert [--config FILE] --listener NAME [--chain FILE]... [--env-file FILE] FILE

Runs the STARTTLS decision for the client certificate in FILE (PEM, leaf first, optionally with the chain the
client sends; or one DER certificate) on --listener as "smtpgate api" would (no decision cache, no metrics, no log
line) and prints each step: the path from the leaf to a trust anchor or the check that failed, each revocation
check and the CRL used (with its thisUpdate and nextUpdate), the certificate query after token substitution, base
and scope, which directory host answered in how many ms, the entries found, and the verdict with the SMTP reply.

Options:
  -c, --config FILE     the API's configuration; default: $SMTPGATE_CONFIG
  -l, --listener NAME   the listener the client connected to (its auth profile must be a certificate profile)
  --chain FILE          more certificates the client sends after its own (PEM); may be repeated
  --env-file FILE       read secrets from NAME=value lines too
  -h, --help            this help

Exit status: 0 authenticated; 1 not authenticated (refused, or no decision: AUTH would be offered); 2 usage or
configuration error; 3 the directory or the revocation status could not be had (the API would tempfail).
`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseCommandLine(
    argv,
    {
      config: { type: "string", short: "c" },
      listener: { type: "string", short: "l" },
      chain: { type: "string", multiple: true },
      "env-file": { type: "string" },
    },
    { min: 1, max: 1, name: "FILE (the client certificate)" },
  );
  if (help) {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  const listener = required(values.listener, "listener");
  const presented = [await readCertificates(positionals[0] as string)];
  for (const file of values.chain ?? []) presented.push(await readCertificates(file, "--chain"));
  const chain = presented.flat();
  const source = configPath(values.config);
  const traced = await tracedGate(source, environment(values["env-file"]));
  try {
    const listenerConfig = traced.listener(listener);
    const profile = traced.config.authProfiles[listenerConfig.authProfile];
    if (profile?.type !== "certificate")
      throw new UsageError(
        `--listener: ${listener}'s auth profile ${listenerConfig.authProfile} does not use certificates (try test-auth)`,
      );
    const result = await traced.gate.decideTls({ listener, certificate: { chain: requestChain(chain) } });
    const leaf = chain[0]?.certificate;
    const header = [
      `listener    ${listener}: auth profile ${listenerConfig.authProfile}${profile.allowAuthFallback ? `, AUTH fallback ${profile.allowAuthFallback}` : ", no AUTH fallback"}`,
      `certificate ${leaf?.subject} (serial ${leaf?.serialNumber.toUpperCase()}), ${chain.length} certificate${chain.length === 1 ? "" : "s"} presented`,
    ];
    return printTrial(header, result, traced, ["certificate query", "allowance query"]);
  } finally {
    await traced.close();
  }
}
