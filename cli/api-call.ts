/**
 * One authenticated call to a running decision API for the operator commands (`smtpgate flush`, `smtpgate
 * blocks`): the URL and the token's environment variable from the command line, a deadline, and every failure
 * as a CommandError that says what to fix (exit 3), so a script can tell "not done" from "done".
 */
import { CommandError, EXIT, UsageError } from "./command.ts";

export const DEFAULT_API = "http://127.0.0.1:8787";
export const DEFAULT_TOKEN_ENV = "SMTPGATE_API_TOKEN";
const TIMEOUT_MS = 10_000;

export const API_OPTIONS = { api: { type: "string" }, "token-env": { type: "string" } } as const;

export const API_OPTIONS_HELP = `  --api URL          the decision API (default ${DEFAULT_API})
  --token-env NAME   environment variable holding an API token (default ${DEFAULT_TOKEN_ENV})`;

/** The JSON answer of `method path`; throws a CommandError for no answer or a non-2xx status. */
export async function callApi(
  values: { api?: string | undefined; "token-env"?: string | undefined },
  method: "GET" | "POST",
  path: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const tokenEnv = values["token-env"] ?? DEFAULT_TOKEN_ENV;
  const token = process.env[tokenEnv];
  if (!token) throw new UsageError(`environment variable ${tokenEnv} is not set (an API token)`);
  const url = new URL(path, values.api ?? DEFAULT_API);
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (error) {
    throw new CommandError(`${url.origin}: ${(error as Error).message}`, EXIT.unavailable);
  }
  const answer = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok)
    throw new CommandError(
      `${url.origin} answered ${response.status}: ${String(answer.detail ?? answer.title ?? "")}`,
      EXIT.unavailable,
    );
  return answer;
}
