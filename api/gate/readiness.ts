/**
 * Readiness for GET /readyz: every directory answers a probe, and every CRL source holds a CRL (a failed refresh is
 * shown, but the API stays ready while it still holds one, whose freshness each decision checks).
 */
import type { Directory } from "../core/directory.ts";
import type { CrlStore } from "../pki/crl-store.ts";

export interface Readiness {
  ready: boolean;
  directories: Record<string, { ready: boolean; detail: string }>;
  crlSources: Record<string, { ready: boolean; detail: string }>;
}

export async function readiness(
  directories: Readonly<Record<string, Directory>>,
  crls: CrlStore | null,
  now: Date,
): Promise<Readiness> {
  const entries = await Promise.all(
    Object.entries(directories).map(async ([name, directory]) => {
      const probe = await directory.probe();
      return [
        name,
        probe.ok
          ? { ready: true, detail: `answered: ${probe.value.host}` }
          : { ready: false, detail: probe.error.detail },
      ] as const;
    }),
  );
  const crlSources = Object.fromEntries(
    (crls?.status() ?? []).map((state) => [
      state.name,
      // With no CRL at all, revocation cannot be decided.
      state.crl
        ? {
            ready: true,
            detail: `loaded, nextUpdate ${state.crl.nextUpdate?.toISOString() ?? "absent"}${state.crl.nextUpdate && state.crl.nextUpdate < now ? " (STALE: decisions see revocation as unknown)" : ""}${state.error ? `; last refresh failed: ${state.error}` : ""}`,
          }
        : { ready: false, detail: state.error ?? "not loaded yet" },
    ]),
  );
  const ready = entries.every(([, state]) => state.ready) && Object.values(crlSources).every((state) => state.ready);
  return { ready, directories: Object.fromEntries(entries), crlSources };
}
