/**
 * `smtpgate check --connect`, the directory part: every host of every LDAP server profile on its own (not just the
 * first that answers, as decisions do), with the profile's own connection code: connect, TLS, the service bind,
 * then a base-scope search of every base DN a query of the profile uses. Each step is timed; each failure comes
 * with the configuration key that fixes it (ldap-diagnosis.ts).
 */
import type { Config } from "../api/config/schema.ts";
import type { LdapDirectory } from "../api/ldap/ldap-directory.ts";
import { timed } from "./command.ts";
import { diagnose, type Diagnosis } from "./ldap-diagnosis.ts";

export interface HostCheckReport {
  lines: string[];
  /** Failures that need a configuration or server change. */
  problems: number;
  /** Hosts that could not be reached. */
  unreachable: number;
}

/** A base DN some query searches, and the key that sets it (where an operator would change it). */
interface SearchBase {
  baseDn: string;
  key: string;
}

/**
 * Checks each host of each directory. `lastError(name)` is the error of the latest failed try on a host of that
 * directory, as the adapter reported it (the directories must have been built with that hook).
 */
export async function checkDirectoryHosts(
  config: Config,
  directories: Readonly<Record<string, LdapDirectory>>,
  lastError: (directory: string) => unknown,
): Promise<HostCheckReport> {
  const report: HostCheckReport = { lines: [], problems: 0, unreachable: 0 };
  for (const [name, directory] of Object.entries(directories)) {
    const settings = config.directories[name] as Config["directories"][string];
    report.lines.push(
      `directory ${name} (${settings.mode}, ${settings.hosts.length} host${settings.hosts.length > 1 ? "s" : ""})`,
    );
    const bases = searchBases(config, name);
    for (const [index, single] of directory.perHost().entries()) {
      const host = settings.hosts[index] as string;
      const context = { directory: name, config: settings, host };
      const fail = (diagnosis: Diagnosis, indent: string): void => {
        report.lines.push(`${indent}  ${diagnosis.what}`, `${indent}  fix: ${diagnosis.fix}`);
        if (diagnosis.unreachable) report.unreachable += 1;
        else report.problems += 1;
      };
      try {
        const connected = await timed(() => single.probe());
        const opening = `${host}  ${transport(host, settings)}, ${settings.bind ? `bind as ${settings.bind.dn}` : "anonymous"}`;
        if (!connected.result.ok) {
          report.lines.push(`  ${opening}: FAILED after ${connected.ms} ms`);
          fail(diagnose(lastError(name), context), "  ");
          continue;
        }
        report.lines.push(`  ${opening}: ok in ${connected.ms} ms`);
        for (const base of bases) {
          const searched = await timed(() =>
            single.search({
              baseDn: base.baseDn,
              scope: "base",
              filter: "(objectClass=*)",
              attributes: [],
              sizeLimit: 1,
            }),
          );
          const label = `    base search ${base.baseDn} (${base.key})`;
          if (!searched.result.ok) {
            report.lines.push(`${label}: FAILED after ${searched.ms} ms`);
            fail(diagnose(lastError(name), { ...context, search: base }), "    ");
          } else if (searched.result.value.length === 0) {
            // A base entry the service identity cannot see answers like one that is not there.
            report.lines.push(`${label}: no entry after ${searched.ms} ms`);
            report.lines.push(
              `      fix: ${base.key}: ${base.baseDn} is not visible to ${settings.bind?.dn ?? "anonymous"}: check the DN and the server's access rules`,
            );
            report.problems += 1;
          } else report.lines.push(`${label}: ok in ${searched.ms} ms`);
        }
      } finally {
        await single.close();
      }
    }
  }
  return report;
}

function searchBases(config: Config, directory: string): SearchBase[] {
  const own = config.directories[directory]?.baseDn as string;
  const bases: SearchBase[] = [{ baseDn: own, key: `directories.${directory}.baseDn` }];
  const add = (baseDn: string | undefined, key: string): void => {
    if (baseDn !== undefined && !bases.some((base) => base.baseDn.toLowerCase() === baseDn.toLowerCase()))
      bases.push({ baseDn, key });
  };
  for (const [name, query] of Object.entries(config.smtpAuthQueries)) {
    if (query.directory !== directory) continue;
    add(query.baseDn, `smtpAuthQueries.${name}.baseDn`);
    add(query.allowance?.baseDn, `smtpAuthQueries.${name}.allowance.baseDn`);
  }
  for (const [name, query] of Object.entries(config.certificateQueries))
    if (query.directory === directory) add(query.baseDn, `certificateQueries.${name}.baseDn`);
  return bases;
}

function transport(host: string, settings: Config["directories"][string]): string {
  if (host.startsWith("ldaps:")) return "LDAPS";
  return settings.startTls ? "StartTLS" : "plaintext (allowPlaintext)";
}
