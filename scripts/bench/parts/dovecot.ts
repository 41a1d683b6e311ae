/**
 * Part `dovecot`: SASL decisions over the Dovecot authentication protocol, Dovecot's own auth service against
 * smtpgate's Dovecot-protocol front, driven by one client (dev/dovecot-auth-client.ts) in the same way: `c`
 * PLAIN requests in flight, pipelined over up to four connections, as Postfix's smtpd processes keep one each.
 * Both ask the same slapd for the same 200 bench users over StartTLS: Dovecot with `passdb ldap` and auth_bind
 * (search, then bind as the user), the front in the API process deciding in-process (the `uncached` and `cached`
 * listeners). Uncached: Dovecot with auth_cache_size 0 against the `uncached` listener; cached: Dovecot with its
 * cache against the `cached` listener, each primed with every user first.
 *
 * The API's RSS at rest and at its peak during the c=32 uncached cell give the memory per decision in flight.
 */
import { connectDovecotAuth, type DovecotAuthClient } from "../../../dev/dovecot-auth-client.ts";
import { startDovecot, type DovecotInstance } from "../../../dev/dovecot.ts";
import type { SlapdInstance } from "../../../dev/slapd/index.ts";
import { BENCH_BASE_DN, benchUser, USERS } from "../config.ts";
import { closedLoop, peakRssDuring, processTree, rssBytes } from "../measure.ts";
import { PEER_FIGURES } from "../figures.ts";
import type { PartContext } from "./context.ts";

/** Connections per client pool: requests beyond this many are pipelined on them. */
const MAX_CONNECTIONS = 4;
/** rip= of every request: the SMTP client's address, as Postfix sends it (smtpgate's front requires one). */
const CLIENT_IP = "127.0.0.1";

export interface DovecotBenchContext extends PartContext {
  /** The API's Dovecot-protocol front ports (benchApiConfig's `fronts`), by listener. */
  frontPorts: { uncached: number; cached: number };
}

export interface InFlightMemory {
  apiRssAtRestBytes: number;
  apiRssPeakAtC32Bytes: number;
  /** (peak − at rest) / 32: what a decision in flight holds, heap growth included. */
  apiBytesPerInFlightDecision: number;
}

/** The Dovecot instances the `postfix` part also uses (Postfix's SASL through Dovecot). */
export interface DovecotPeers {
  uncached: DovecotInstance;
  cached: DovecotInstance;
  close(): Promise<void>;
}

export async function startDovecotPeers(slapd: SlapdInstance): Promise<DovecotPeers> {
  const uncached = await startDovecot({ slapd, baseDn: BENCH_BASE_DN });
  const cached = await startDovecot({ slapd, baseDn: BENCH_BASE_DN, cacheSize: "10M" }).catch(async (error) => {
    await uncached.close();
    throw error;
  });
  return { uncached, cached, close: async () => void (await Promise.all([uncached.close(), cached.close()])) };
}

/** `count` connections; worker `w` uses connection `w % count`. */
async function clientPool(port: number, count: number): Promise<DovecotAuthClient[]> {
  return Promise.all(Array.from({ length: count }, () => connectDovecotAuth({ port, clientIp: CLIENT_IP })));
}

export async function benchDovecot(context: DovecotBenchContext, peers: DovecotPeers): Promise<InFlightMemory | null> {
  const { concurrency, measure, record, slapd } = context;
  let user = 0;
  let memory: InFlightMemory | null = null;
  const plain = (clients: DovecotAuthClient[]) => async (worker: number) => {
    const uid = benchUser(user++ % USERS);
    const answer = await (clients[worker % clients.length] as DovecotAuthClient).plain(uid, `${uid}-password`);
    if (!answer.ok) throw new Error(`refused: ${answer.fields.join(" ")}`);
  };
  const targets = (cached: boolean) => [
    {
      name: cached ? PEER_FIGURES.dovecotCached : PEER_FIGURES.dovecotUncached,
      port: (cached ? peers.cached : peers.uncached).authPort,
      pids: { dovecot: processTree((cached ? peers.cached : peers.uncached).pid), slapd: slapd.pid },
    },
    {
      name: cached ? PEER_FIGURES.frontCached : PEER_FIGURES.frontUncached,
      port: cached ? context.frontPorts.cached : context.frontPorts.uncached,
      pids: { api: context.api.pid, slapd: slapd.pid },
    },
  ];

  context.log("SASL decisions over the Dovecot protocol: Dovecot vs smtpgate's front");
  for (const cached of [false, true]) {
    if (cached)
      for (const target of targets(true)) {
        const [client] = await clientPool(target.port, 1);
        for (let i = 0; i < USERS; i += 1) await plain([client as DovecotAuthClient])(0);
        client?.close();
      }
    // Each server warms up before its c=1 cell (JIT, LDAP connections), not in it.
    for (const target of targets(cached)) {
      const clients = await clientPool(target.port, MAX_CONNECTIONS);
      await closedLoop(8, context.quick ? 0.5 : 2, plain(clients), {});
      for (const client of clients) client.close();
    }
    for (const c of concurrency) {
      for (const target of targets(cached)) {
        const clients = await clientPool(target.port, Math.min(c, MAX_CONNECTIONS));
        try {
          const cell = () => measure(target.name, c, plain(clients), target.pids);
          if (c === 32 && !cached && "api" in target.pids) {
            const atRest = rssBytes(context.api.pid);
            const { result, peakBytes } = await peakRssDuring(context.api.pid, cell);
            record(target.name, c, result);
            memory = {
              apiRssAtRestBytes: atRest,
              apiRssPeakAtC32Bytes: peakBytes,
              apiBytesPerInFlightDecision: Math.max(0, Math.round((peakBytes - atRest) / c)),
            };
            context.log(
              `  API RSS ${(atRest / 2 ** 20).toFixed(1)} MiB at rest, peak ${(peakBytes / 2 ** 20).toFixed(1)} MiB with ${c} in flight: ${(memory.apiBytesPerInFlightDecision / 1024).toFixed(1)} KiB per decision in flight`,
            );
          } else record(target.name, c, await cell());
        } finally {
          for (const client of clients) client.close();
        }
      }
    }
  }
  return memory;
}
