/**
 * The policy server at the edge: the same server as in the Node runtime (index.ts), deciding through the HTTP
 * API (contract/api-client.ts), e.g. for a Postfix next to an API deployed on Workers. The listener's host access
 * table comes from GET /v1/listeners/{name} and is refreshed like the relay's.
 *
 *   SMTPGATE_API_TOKEN=... node fronts/postfix-policy/edge.ts --api https://gate.example.com \
 *       --listener submission --listen 127.0.0.1:10040          # or --listen /run/smtpgate/policy --mode 0660
 *
 * Exits 2 with a message for a bad argument, a missing token or an API that does not know the listener.
 */
import { parseArgs } from "node:util";
import { ApiClient } from "../../contract/api-client.ts";
import { ListenerPolicyHolder } from "../../contract/listener-policy-holder.ts";
import { createJsonLineLogger, writeToStdout } from "../../lib/json-lines.ts";
import { stopOnSignals } from "../../lib/node/graceful-stop.ts";
import { createPostfixPolicyServer, type PolicySocket } from "./index.ts";

const USAGE =
  "usage: SMTPGATE_API_TOKEN=... postfix-policy-edge --api URL --listener NAME --listen HOST:PORT|/PATH [--mode 0660] [--timeout-ms 3000] [--refresh-seconds 60]";
const log = createJsonLineLogger(writeToStdout, { component: "postfix-policy" });

function fail(message: string): never {
  process.stderr.write(`postfix-policy-edge: ${message}\n${USAGE}\n`);
  process.exit(2);
}

/** `127.0.0.1:10040`, `[::1]:10040` or an absolute socket path. */
export function parseListen(listen: string, mode: string | undefined): PolicySocket | null {
  if (listen.startsWith("/")) return { path: listen, mode: mode ?? "0660" };
  const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(listen);
  const port = Number(match?.[2]);
  return match && port <= 65535 ? { host: match[1] as string, port } : null;
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        api: { type: "string" },
        listener: { type: "string" },
        listen: { type: "string" },
        mode: { type: "string" },
        "timeout-ms": { type: "string", default: "3000" },
        "refresh-seconds": { type: "string", default: "60" },
      },
    }));
  } catch (error) {
    fail((error as Error).message);
  }
  const token = process.env.SMTPGATE_API_TOKEN;
  if (!values.api || !values.listener || !values.listen) fail("--api, --listener and --listen are required");
  if (!token) fail("SMTPGATE_API_TOKEN is not set");
  const listen = parseListen(values.listen, values.mode);
  if (!listen) fail(`--listen: not HOST:PORT or an absolute path: ${values.listen}`);
  const timeoutMs = Number(values["timeout-ms"]);
  const refreshSeconds = Number(values["refresh-seconds"]);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 100) fail("--timeout-ms: at least 100");
  if (!Number.isInteger(refreshSeconds) || refreshSeconds < 1) fail("--refresh-seconds: at least 1");

  const api = new ApiClient({ url: values.api, token, timeoutMs, connections: 8 });
  const policy = new ListenerPolicyHolder(api, values.listener, log);
  try {
    await policy.load();
  } catch (error) {
    fail(`cannot load listener ${values.listener} from ${values.api}: ${(error as Error).message}`);
  }
  policy.startRefreshing(refreshSeconds);
  const server = createPostfixPolicyServer({
    listener: values.listener,
    listen,
    decider: api,
    hostAccessTable: () => policy,
    log,
  });
  await server.listen();
  stopOnSignals(
    async () => {
      policy.stopRefreshing();
      await server.close();
      await api.close();
    },
    (signal) => log({ level: "info", msg: "stopping", signal }),
  );
}

if (import.meta.main) await main();
