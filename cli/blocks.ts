/**
 * `smtpgate blocks`: what the brute-force limiter of a running API holds, and lifting it.
 *
 *   smtpgate blocks                       every full bucket: which, whose, failures, for how long, per listener
 *   smtpgate blocks clear --address IP    empties the address's bucket (at each listener's prefix length)
 *   smtpgate blocks clear --user NAME     lifts the user's blocks and trust and drops their cached decisions
 *
 * Through the brute-force store: with Redis, what every replica sees.
 */
import type { ListedBlock } from "../api/core/brute-force-blocks.ts";
import { API_OPTIONS, API_OPTIONS_HELP, callApi } from "./api-call.ts";
import { EXIT, parseCommandLine, UsageError } from "./command.ts";

export const HELP = `usage: smtpgate blocks [--api URL] [--token-env NAME] [--json]
       smtpgate blocks clear [--api URL] [--token-env NAME] (--address IP | --user NAME)

Lists every brute-force bucket that is full under some listener's policy (address: a client network; user: a
name as typed; pair: the two together), with its failures in the window and the seconds until it has room. With
clear, empties an address's bucket or lifts a user's blocks (as smtpgate flush does). With a Redis
bruteForceStore this is every replica's view; with memory, the API asked.

Options:
${API_OPTIONS_HELP}
  --address IP       clear: the client address whose network's bucket to empty
  --user NAME        clear: the user whose blocks to lift
  --json             print the API's answer as JSON
  -h, --help         this help

Exit status: 0 done; 2 usage error; 3 the API did not answer (unreachable, refused, store unavailable).
`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseCommandLine(
    argv,
    {
      ...API_OPTIONS,
      address: { type: "string" },
      user: { type: "string" },
      json: { type: "boolean" },
    },
    { min: 0, max: 1, name: "clear" },
  );
  if (help) {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  const [action, ...extra] = positionals;
  if (extra.length > 0 || (action !== undefined && action !== "clear"))
    throw new UsageError(`unexpected ${[action, ...extra].join(" ")}: the only action is clear`);
  if (action === "clear") return await clear(values);
  if (values.address || values.user) throw new UsageError("--address and --user go with clear");
  const answer = await callApi(values, "GET", "/v1/blocks");
  const blocks = (answer.blocks ?? []) as ListedBlock[];
  process.stdout.write(values.json ? `${JSON.stringify(answer, null, 2)}\n` : listing(blocks));
  return EXIT.ok;
}

async function clear(values: {
  address?: string;
  user?: string;
  api?: string;
  "token-env"?: string;
  json?: boolean;
}): Promise<number> {
  if (Boolean(values.address) === Boolean(values.user))
    throw new UsageError("clear needs one of --address IP or --user NAME");
  const answer = values.address
    ? await callApi(values, "POST", "/v1/addresses/clear", { address: values.address })
    : await callApi(values, "POST", "/v1/users/flush", { user: values.user });
  if (values.json) process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
  else if (values.address)
    process.stdout.write(
      `cleared ${((answer.cleared ?? []) as string[]).join(", ") || "nothing"} (${values.address})\n`,
    );
  else process.stdout.write(`lifted ${values.user}'s blocks (generation ${String(answer.generation)})\n`);
  return EXIT.ok;
}

function listing(blocks: ListedBlock[]): string {
  if (blocks.length === 0) return "no brute-force blocks\n";
  const rows = blocks.flatMap((block) =>
    block.listeners.map((entry) =>
      [
        block.bucket,
        block.address ?? "-",
        block.user ?? "-",
        entry.listener,
        String(entry.failures),
        `${entry.retryAfterSeconds} s`,
      ].join("\t"),
    ),
  );
  return ["bucket\taddress\tuser\tlistener\tfailures\tretry after", ...rows].join("\n") + "\n";
}
