/**
 * Part `postfix`: full submission sessions (EHLO, STARTTLS, AUTH PLAIN, MAIL, RCPT, 10 kB DATA, QUIT) through a
 * private Postfix relaying to the sink, measured at each concurrency one after the other:
 *
 * - Postfix + smtpgate: `smtpd_sasl_type = dovecot` with docs/integrations/postfix-sasl.main.cf, pointed at
 *   smtpgate's Dovecot-protocol front (the API's `uncached` listener);
 * - Postfix + Dovecot: the same main.cf pointed at Dovecot's auth service (uncached, passdb ldap, auth_bind);
 * - the relay (listener `uncached`, `limits.greetingDelayMs: 0`, Postfix greets at once too).
 *
 * Postfix's CPU is its master's process tree (smtpd, cleanup, qmgr, smtp, tlsmgr, anvil, ...), exited processes
 * included. Postfix answers DATA once the message is in its queue; the relay once the sink has taken it.
 */
import { startPostfix, type PostfixInstance } from "../../../dev/postfix/index.ts";
import { postfixSaslMainCf } from "../../../dev/postfix/snippets.ts";
import { closedLoop, processTree, type Processes } from "../measure.ts";
import { PEER_FIGURES } from "../figures.ts";
import type { PartContext } from "./context.ts";

/** smtpd processes: more than the highest concurrency, so no session waits for one. */
const SMTPD_PROCESSES = 64;

export interface PostfixBenchContext extends PartContext {
  /** The API's Dovecot-protocol front for the `uncached` listener. */
  frontPort: number;
  /** Dovecot's auth service, uncached (parts/dovecot.ts). */
  dovecot: { authPort: number; pid: number | undefined };
}

async function postfixAskingSaslAt(context: PostfixBenchContext, saslPort: number): Promise<PostfixInstance> {
  return startPostfix({
    relayPort: context.sink.port,
    tls: { certFile: context.slapd.pki.certFile, keyFile: context.slapd.pki.keyFile },
    smtpdProcesses: SMTPD_PROCESSES,
    mainCf: await postfixSaslMainCf(`127.0.0.1:${saslPort}`),
  });
}

export async function benchPostfix(context: PostfixBenchContext): Promise<void> {
  const { concurrency, measure, record, slapd, session, sink } = context;
  context.log("SMTP sessions: Postfix with smtpgate's front, Postfix with Dovecot, the relay");
  const withSmtpgate = await postfixAskingSaslAt(context, context.frontPort);
  const withDovecot = await postfixAskingSaslAt(context, context.dovecot.authPort).catch(async (error) => {
    await withSmtpgate.close();
    throw error;
  });
  try {
    const relay = await context.startRelay("relay-beside-postfix", { upstreamMaxConnections: 32, greetingDelayMs: 0 });
    const targets: { name: string; port: number; pids: Processes }[] = [
      {
        name: PEER_FIGURES.postfixSmtpgate,
        port: withSmtpgate.port,
        pids: { postfix: processTree(withSmtpgate.pid), api: context.api.pid, slapd: slapd.pid, sink: sink.pid },
      },
      {
        name: PEER_FIGURES.postfixDovecot,
        port: withDovecot.port,
        pids: {
          postfix: processTree(withDovecot.pid),
          dovecot: processTree(context.dovecot.pid),
          slapd: slapd.pid,
          sink: sink.pid,
        },
      },
      {
        name: PEER_FIGURES.relayBesidePostfix,
        port: relay.port,
        pids: { relay: relay.pid, api: context.api.pid, slapd: slapd.pid, sink: sink.pid },
      },
    ];
    // Each server warms up before its c=1 cell (JIT, TLS, Postfix's smtpd processes started), not in it.
    for (const target of targets) await closedLoop(8, context.quick ? 0.5 : 2, session(target.port), {});
    for (const c of concurrency)
      for (const target of targets)
        record(target.name, c, await measure(target.name, c, session(target.port), target.pids));
  } finally {
    await Promise.all([withSmtpgate.close(), withDovecot.close()]);
  }
}
