/**
 * `smtpgate token new`: a random API token, printed alone on stdout so it can go straight into a secret store:
 *
 *   smtpgate token new > /etc/smtpgate/api-token     # then SMTPGATE_API_TOKEN=$(cat ...) in api.env
 */
import { randomBytes } from "node:crypto";
import { EXIT, parseCommandLine, UsageError } from "./command.ts";

const DEFAULT_BYTES = 32;
/** 128 bits: below that a token is guessable offline faster than anyone should accept. */
const MIN_BYTES = 16;
const MAX_BYTES = 256;

export const HELP = `usage: smtpgate token new [--bytes N]

Prints a new random bearer token for api.tokens (or api.metricsTokens): N random bytes (default ${DEFAULT_BYTES},
${MIN_BYTES} to ${MAX_BYTES}) in base64url, which is a valid RFC 6750 token. Put it in the environment variable
the configuration names, never in the configuration file.

Options:
  --bytes N    random bytes in the token (default ${DEFAULT_BYTES})
  -h, --help   this help

Exit status: 0 printed; 2 usage error.
`;

export async function run(argv: string[]): Promise<number> {
  const { values, help } = parseCommandLine(argv, { bytes: { type: "string" } });
  if (help) {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  const bytes = values.bytes === undefined ? DEFAULT_BYTES : Number(values.bytes);
  if (!Number.isInteger(bytes) || bytes < MIN_BYTES || bytes > MAX_BYTES)
    throw new UsageError(`--bytes: a whole number from ${MIN_BYTES} to ${MAX_BYTES}, not ${values.bytes}`);
  process.stdout.write(`${randomBytes(bytes).toString("base64url")}\n`);
  return EXIT.ok;
}
