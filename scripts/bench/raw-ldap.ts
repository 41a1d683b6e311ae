// The directory's own limit, the baseline of every uncached decision: ldapts in the load generator's process, a
// search on a service connection and a bind on a second persistent connection per worker, both over StartTLS like
// the API's, nothing else.
import { Client } from "ldapts";
import { SEED, type SlapdInstance } from "../../dev/slapd/index.ts";
import { BENCH_BASE_DN, benchUser, USERS } from "./config.ts";
import type { MeasureFigure, RunResult } from "./measure.ts";

export async function measureRawLdap(
  slapd: SlapdInstance,
  concurrency: number,
  measure: MeasureFigure,
): Promise<RunResult> {
  const pairs = await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const service = new Client({ url: slapd.ldapUrl });
      const user = new Client({ url: slapd.ldapUrl });
      for (const client of [service, user]) await client.startTLS({ ca: [slapd.pki.caPem], servername: "localhost" });
      await service.bind(SEED.serviceDn, SEED.servicePassword);
      return { service, user };
    }),
  );
  let next = 0;
  try {
    return await measure(
      "raw ldapts search+bind",
      concurrency,
      async (worker) => {
        const pair = pairs[worker] as (typeof pairs)[number];
        const uid = benchUser(next++ % USERS);
        const found = await pair.service.search(BENCH_BASE_DN, {
          filter: `(uid=${uid})`,
          attributes: ["1.1"],
          sizeLimit: 2,
        });
        await pair.user.bind(found.searchEntries[0]?.dn as string, `${uid}-password`);
      },
      { slapd: slapd.pid },
    );
  } finally {
    await Promise.all(pairs.flatMap((pair) => [pair.service.unbind(), pair.user.unbind()]));
  }
}
