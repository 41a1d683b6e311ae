/**
 * At start, each directory host is asked once (a root DSE read on a service connection, so the service bind is
 * tried too), and every failure is logged at `warn` with what to fix. The API starts either way: a directory may
 * come up later, and /readyz says whether it has. Each host is bounded by its connect and operation timeouts.
 */
import type { Config } from "../../config/schema.ts";
import type { Logger } from "../../http/app.ts";
import { fixFor } from "../../ldap/failure-fixes.ts";
import type { LdapDirectory } from "../../ldap/ldap-directory.ts";
import { describe } from "../../ldap/operations.ts";

export async function probeDirectoriesAtStart(
  config: Config,
  directories: Readonly<Record<string, LdapDirectory>>,
  log: Logger,
): Promise<void> {
  await Promise.all(
    Object.entries(directories).map(async ([name, directory]) => {
      const configured = config.directories[name];
      if (!configured) return;
      for (const probe of await directory.probeEachHost()) {
        const host = probe.endpoint.url;
        if (probe.error === null) {
          log({ level: "info", msg: "directory host answers", directory: name, host });
          continue;
        }
        log({
          level: "warn",
          msg: "directory host failed the start-up probe",
          directory: name,
          host,
          detail: describe(probe.error),
          fix: fixFor(probe.error, {
            directory: name,
            config: configured,
            index: probe.index,
            endpoint: probe.endpoint,
          }),
        });
      }
    }),
  );
}
