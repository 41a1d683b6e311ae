/**
 * The demo: a throw-away OpenLDAP with demo users and the decision API on 127.0.0.1:8787, in the foreground
 * until Ctrl-C, then everything is cleaned up.
 *
 *   npm run demo
 *
 * Users: alice / alice-password (in cn=smtp-users: allowed), bob / bob-password (not in the group: the
 * allowance query fails and the demo listener rejects). API token: demo-token.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { jsonLineLogger, readConfigFile, startApiServer } from "../api/runtime/node/server.ts";
import { SEED, startSlapd } from "../test/harness/slapd.ts";

const API_HOST = "127.0.0.1";
const API_PORT = Number(process.env.SMTPGATE_DEMO_PORT ?? 8787);
const API_TOKEN = "demo-token";

const slapd = await startSlapd();
const configPath = join(slapd.dir, "smtpgate-demo.yaml");
await writeFile(
  configPath,
  `# Written by npm run demo; the same shape as infra/config/flow-b.yaml.
directories:
  demo:
    hosts: [${slapd.ldapUrl}, ${slapd.ldapsUrl}]
    tls: { caFile: ${slapd.pki.caFile} }
    bind: { dn: "${SEED.serviceDn}", password: { env: SMTPGATE_DEMO_BIND_PASSWORD } }
    baseDn: ${SEED.baseDn}
smtpAuthQueries:
  demo-auth:
    directory: demo
    filter: (uid={u})
    method: bind
    allowance:
      filter: (&(uid={u})(memberOf=${SEED.smtpUsersGroupDn}))
authProfiles:
  demo: { type: ldap, query: demo-auth }
listeners:
  submission: { authProfile: demo, onAllowanceFailure: reject }
api:
  tokens: [{ env: SMTPGATE_DEMO_API_TOKEN }]
  listen: { host: ${API_HOST}, port: ${API_PORT} }
`,
);

let api;
try {
  api = await startApiServer({
    config: await readConfigFile(configPath),
    source: configPath,
    env: { SMTPGATE_DEMO_BIND_PASSWORD: SEED.servicePassword, SMTPGATE_DEMO_API_TOKEN: API_TOKEN },
    log: jsonLineLogger,
  });
} catch (error) {
  await slapd.close();
  throw error;
}

const curl = (user: string, password: string): string =>
  `curl -s -H 'Authorization: Bearer ${API_TOKEN}' -H 'Content-Type: application/json' \\\n    -d '{"listener":"submission","client":{"ip":"192.0.2.10"},"mechanism":"PLAIN","username":"${user}","password":"${password}"}' \\\n    ${api.url}/v1/decide/auth`;

process.stderr.write(`
smtpgate demo is running (Ctrl-C to stop and clean up)
  decision API   ${api.url}   (token: ${API_TOKEN})
  OpenLDAP       ${slapd.ldapUrl} (StartTLS), ${slapd.ldapsUrl}
  config         ${configPath}

Try it:
  ${curl("alice", "alice-password")}
      -> verdict allow, 235 2.7.0 (alice is in cn=smtp-users)
  ${curl("bob", "bob-password")}
      -> verdict deny, reason allowance-failed, 535 5.7.8
  ${curl("alice", "")}
      -> verdict deny, reason empty-password (nothing was sent to LDAP)
  curl -s ${api.url}/readyz

Decision log lines follow (one JSON object per decision):
`);

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  process.stderr.write("\nstopping: API, then slapd; removing the temp dir\n");
  await api.close();
  await slapd.close();
  process.exit(0);
};
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
