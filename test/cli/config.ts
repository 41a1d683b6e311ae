// The `directories:` section every CLI test (and scripts/check-package.ts) points at its throw-away slapd: one
// directory "corp", StartTLS with the slapd's CA, the seed's service identity with its password in $BIND_PW.
import { SEED, type SlapdInstance } from "../harness/slapd.ts";

/** `keys` replace or add keys of the directory (values in YAML flow syntax). */
export function slapdDirectoryYaml(slapd: SlapdInstance, keys: Record<string, string> = {}): string {
  const directory = {
    hosts: `[${slapd.ldapUrl}]`,
    tls: `{ caFile: ${slapd.pki.caFile} }`,
    bind: `{ dn: "${SEED.serviceDn}", password: { env: BIND_PW } }`,
    baseDn: SEED.baseDn,
    ...keys,
  };
  return `directories:\n  corp:\n${Object.entries(directory)
    .map(([key, value]) => `    ${key}: ${value}`)
    .join("\n")}\n`;
}
