/**
 * `smtpgate flush --user U`: after a password change (or to lift a block), asks a running API to drop one user's
 * cached SMTP AUTH decisions and brute-force blocks (POST /v1/users/flush). With a Redis bruteForceStore the flush
 * reaches every replica; with the memory store only the API asked.
 *
 *   SMTPGATE_API_TOKEN=... smtpgate flush --api http://127.0.0.1:8787 --user alice
 */
import { CommandError, EXIT, parseCommandLine, UsageError } from "./command.ts";

const DEFAULT_API = "http://127.0.0.1:8787";
const DEFAULT_TOKEN_ENV = "SMTPGATE_API_TOKEN";
const TIMEOUT_MS = 10_000;

export const HELP = `usage: smtpgate flush [--api URL] [--token-env NAME] --user NAME

Drops the user's cached SMTP AUTH decisions and lifts their brute-force blocks and trust, on every API replica that
shares the brute-force store (bruteForceStore.type: redis; with memory, only on the API asked). Call it from a
password-change flow: a cached allow of the old password is never served after it.

Options:
  --api URL          the decision API (default ${DEFAULT_API})
  --token-env NAME   environment variable holding an API token (default ${DEFAULT_TOKEN_ENV})
  --user NAME        the identity (user ID attribute's value) or the name as the user types it
  -h, --help         this help

Exit status: 0 flushed; 2 usage error; 3 the API did not flush (unreachable, refused, store unavailable).
`;

export async function run(argv: string[]): Promise<number> {
  const { values, help } = parseCommandLine(argv, {
    api: { type: "string" },
    "token-env": { type: "string" },
    user: { type: "string" },
  });
  if (help) {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  if (!values.user) throw new UsageError("--user is required");
  const tokenEnv = values["token-env"] ?? DEFAULT_TOKEN_ENV;
  const token = process.env[tokenEnv];
  if (!token) throw new UsageError(`environment variable ${tokenEnv} is not set (an API token)`);
  const url = new URL("/v1/users/flush", values.api ?? DEFAULT_API);
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ user: values.user }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (error) {
    throw new CommandError(`${url.origin}: ${(error as Error).message}`, EXIT.unavailable);
  }
  const body = (await response.json().catch(() => ({}))) as { generation?: unknown; detail?: unknown };
  if (!response.ok)
    throw new CommandError(`${url.origin} answered ${response.status}: ${String(body.detail ?? "")}`, EXIT.unavailable);
  process.stdout.write(`flushed ${values.user} (generation ${String(body.generation)})\n`);
  return EXIT.ok;
}
