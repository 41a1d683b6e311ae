/**
 * `smtpgate flush --user U`: after a password change (or to lift a block), asks a running API to drop one user's
 * cached SMTP AUTH decisions and brute-force blocks (POST /v1/users/flush). With a Redis bruteForceStore the flush
 * reaches every replica; with the memory store only the API asked.
 *
 *   SMTPGATE_API_TOKEN=... smtpgate flush --api http://127.0.0.1:8787 --user alice
 */
import { API_OPTIONS, API_OPTIONS_HELP, callApi } from "./api-call.ts";
import { EXIT, parseCommandLine, UsageError } from "./command.ts";

export const HELP = `usage: smtpgate flush [--api URL] [--token-env NAME] --user NAME

Drops the user's cached SMTP AUTH decisions and lifts their brute-force blocks and trust, on every API replica that
shares the brute-force store (bruteForceStore.type: redis; with memory, only on the API asked). Call it from a
password-change flow: a cached allow of the old password is never served after it.

Options:
${API_OPTIONS_HELP}
  --user NAME        the identity (user ID attribute's value) or the name as the user types it
  -h, --help         this help

Exit status: 0 flushed; 2 usage error; 3 the API did not flush (unreachable, refused, store unavailable).
`;

export async function run(argv: string[]): Promise<number> {
  const { values, help } = parseCommandLine(argv, { ...API_OPTIONS, user: { type: "string" } });
  if (help) {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  if (!values.user) throw new UsageError("--user is required");
  const answer = await callApi(values, "POST", "/v1/users/flush", { user: values.user });
  process.stdout.write(`flushed ${values.user} (generation ${String(answer.generation)})\n`);
  return EXIT.ok;
}
