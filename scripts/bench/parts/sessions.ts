/**
 * Part `sessions`: full submission sessions (EHLO, STARTTLS, AUTH, MAIL, RCPT, 10 kB DATA, QUIT) through the relay
 * against a bare smtp-server with the same TLS and library defaults (bare-smtp.ts), and through a second relay
 * that greets at once (`limits.greetingDelayMs: 0`; the bare smtp-server and the first relay both wait
 * smtp-server's 100 ms).
 */
import { rssBytes, closedLoop } from "../measure.ts";
import type { PartContext } from "./context.ts";

export interface SessionsBenchContext extends PartContext {
  /** `node ARGS` from the repository root until `ready` appears in its output. */
  startNode: (name: string, args: string[], ready: RegExp) => Promise<{ ready: RegExpExecArray; pid: number }>;
  /** Node options of the main relay (the CPU profile, when asked for). */
  relayNodeOptions: string[];
}

/** Runs the part; resolves to the main relay's RSS after its sessions. */
export async function benchSessions(context: SessionsBenchContext): Promise<number> {
  const { concurrency, measure, record, session, slapd, api, sink } = context;
  context.log("SMTP sessions (EHLO, STARTTLS, AUTH, MAIL, RCPT, 10 kB DATA, QUIT)");
  const bare = await context.startNode(
    "bare-smtp",
    ["scripts/bench/bare-smtp.ts", slapd.pki.keyFile, slapd.pki.certFile],
    /PORT (\d+)/,
  );
  const relay = await context.startRelay(
    "relay",
    { health: true, upstreamMaxConnections: 32 },
    context.relayNodeOptions,
  );
  const promptRelay = await context.startRelay("relay-prompt", { upstreamMaxConnections: 32, greetingDelayMs: 0 });
  const behindRelay = { api: api.pid, slapd: slapd.pid, sink: sink.pid };
  const targets = [
    {
      name: "bare smtp-server sessions",
      port: Number(bare.ready[1]),
      pids: { "bare smtp-server": bare.pid },
    },
    { name: "relay sessions", port: relay.port, pids: { relay: relay.pid, ...behindRelay } },
    {
      name: "relay sessions, greetingDelayMs 0",
      port: promptRelay.port,
      pids: { relay: promptRelay.pid, ...behindRelay },
    },
  ];
  // A fresh relay's first sessions pay for JIT compilation and its first connections to the API: they warm up
  // here, as the API did in the decision parts, so that they do not land in the c=1 cell.
  for (const target of targets) await closedLoop(8, context.quick ? 0.5 : 2, session(target.port), {});
  for (const c of concurrency)
    for (const target of targets)
      record(target.name, c, await measure(target.name, c, session(target.port), target.pids));
  return rssBytes(relay.pid);
}
