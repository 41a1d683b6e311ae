// What the benchmark runs against: 200 bench users in their own branch of the directory, the API's configuration
// (uncached and cached LDAP profiles, a certificate profile) and the relay's, and the request bodies it sends.
import type { ClientPki } from "../../dev/client-pki/index.ts";
import { SEED, type SlapdInstance } from "../../dev/slapd/index.ts";
import { slappasswd } from "../../dev/slapd/seed.ts";

export const USERS = 200;
export const BENCH_BASE_DN = `ou=bench,${SEED.baseDn}`;

/** bench000 … bench199; the password of each is `<uid>-password`. */
export const benchUser = (n: number): string => `bench${String(n).padStart(3, "0")}`;

/** LDIF for startSlapd's extraLdif: ou=bench and USERS inetOrgPerson entries, passwords {SSHA} by slappasswd. */
export async function benchUsersLdif(): Promise<string> {
  const entries = [`dn: ${BENCH_BASE_DN}\nobjectClass: organizationalUnit\nou: bench\n`];
  const uids = Array.from({ length: USERS }, (_, i) => benchUser(i));
  const hashes = await Promise.all(uids.map((uid) => slappasswd("SSHA", `${uid}-password`)));
  uids.forEach((uid, i) => {
    entries.push(
      `dn: uid=${uid},${BENCH_BASE_DN}\nobjectClass: inetOrgPerson\nuid: ${uid}\ncn: ${uid}\nsn: ${uid}\nmail: ${uid}@bench.example\nuserPassword: ${hashes[i]}\n`,
    );
  });
  return entries.join("\n");
}

/** The cached profile's settings, if this version of the config schema has a decision cache. */
function cacheSettings(): Record<string, unknown> {
  return process.env.SMTPGATE_BENCH_NO_CACHE ? {} : { cache: { positiveTtlSeconds: 300, negativeTtlSeconds: 60 } };
}

/** The API's configuration (written as JSON for `api/runtime/node/main.ts --config`). */
export function benchApiConfig(options: {
  slapd: SlapdInstance;
  pki: ClientPki;
  crlBaseUrl: string;
  port: number;
  /** The sink's port: where nginx hands the sessions the `uncached` listener allowed. */
  sinkPort: number;
  /** The `direct` listener (bindDnTemplate; default true): off for a checkout whose schema has no such key. */
  directBind?: boolean;
  /** Dovecot-protocol fronts for the `uncached` and `cached` listeners (served with `smtpgate api`). */
  dovecotFrontPorts?: { uncached: number; cached: number };
}) {
  const { slapd, pki } = options;
  const direct = options.directBind ?? true;
  return {
    directories: {
      corp: {
        hosts: [slapd.ldapUrl],
        tls: { caFile: slapd.pki.caFile },
        bind: { dn: SEED.serviceDn, password: { env: "BENCH_BIND_PW" } },
        baseDn: SEED.baseDn,
        maxConnections: 64,
      },
    },
    smtpAuthQueries: {
      bind: { directory: "corp", baseDn: BENCH_BASE_DN, filter: "(uid={u})" },
      ...(direct ? { direct: { directory: "corp", bindDnTemplate: `uid={u},${BENCH_BASE_DN}` } } : {}),
    },
    certificateQueries: { "by-mail": { directory: "corp", filter: "(mail={email})" } },
    crlSources: { "client-ca": { url: `${options.crlBaseUrl}/intermediate.crl` } },
    authProfiles: {
      uncached: { type: "ldap", query: "bind" },
      ...(direct ? { direct: { type: "ldap", query: "direct" } } : {}),
      cached: { type: "ldap", query: "bind", ...cacheSettings() },
      cert: {
        type: "certificate",
        query: "by-mail",
        trustAnchors: { pem: pki.rootPem },
        intermediates: { pem: pki.intermediate.pem },
        revocation: { crlSources: ["client-ca"] },
      },
    },
    mailFlowPolicies: {
      SUBMISSION: {
        behaviour: "accept",
        tls: "required",
        smtpAuth: "required",
        maxMessageBytes: 1048576,
        maxConnectionsPerClient: 5000,
      },
    },
    listeners: {
      uncached: {
        authProfile: "uncached",
        hostAccessTable: [{ name: "ALL", match: ["0.0.0.0/0", "::/0"], policy: "SUBMISSION" }],
        upstream: { address: "127.0.0.1", port: options.sinkPort },
      },
      cached: { authProfile: "cached" },
      // The same decisions with the brute-force limiter off: its cost (scripts/bench/brute-force.ts).
      nolimit: { authProfile: "uncached", bruteForce: { mode: "off" } },
      ...(direct ? { direct: { authProfile: "direct" } } : {}),
      cert: { authProfile: "cert" },
    },
    api: { tokens: [{ env: "BENCH_TOKEN" }], listen: { host: "127.0.0.1", port: options.port } },
    ...(options.dovecotFrontPorts === undefined
      ? {}
      : {
          fronts: {
            dovecotSasl: Object.entries(options.dovecotFrontPorts).map(([listener, port]) => ({
              listen: `127.0.0.1:${port}`,
              listener,
            })),
          },
        }),
  };
}

/** A relay's configuration (for `edge-relay/main.ts --config`) in front of the API, relaying to the sink. */
export function benchRelayConfig(options: {
  apiPort: number;
  slapd: SlapdInstance;
  starttlsPort: number;
  healthPort?: number;
  sinkPort: number;
  upstreamMaxConnections?: number;
  socketTimeoutMs?: number;
  greetingDelayMs?: number;
}) {
  return {
    listener: "uncached",
    hostname: "relay.bench",
    api: { url: `http://127.0.0.1:${options.apiPort}`, token: { env: "BENCH_TOKEN" } },
    tls: { keyFile: options.slapd.pki.keyFile, certFile: options.slapd.pki.certFile },
    listen: {
      starttls: { host: "127.0.0.1", port: options.starttlsPort },
      ...(options.healthPort === undefined ? {} : { health: { host: "127.0.0.1", port: options.healthPort } }),
    },
    upstream: {
      host: "127.0.0.1",
      port: options.sinkPort,
      ...(options.upstreamMaxConnections === undefined ? {} : { maxConnections: options.upstreamMaxConnections }),
    },
    limits: {
      maxClients: 5000,
      ...(options.socketTimeoutMs === undefined ? {} : { socketTimeoutMs: options.socketTimeoutMs }),
      ...(options.greetingDelayMs === undefined ? {} : { greetingDelayMs: options.greetingDelayMs }),
    },
  };
}

/** POST /v1/decide/auth for bench user `user` on `listener`. */
export const authBody = (listener: string, user: number): string =>
  JSON.stringify({
    listener,
    client: { ip: "192.0.2.1" },
    mechanism: "PLAIN",
    username: benchUser(user),
    password: `${benchUser(user)}-password`,
  });

/** POST /v1/decide/tls with alice's chain. */
export const certBody = (pki: ClientPki): string =>
  JSON.stringify({
    listener: "cert",
    client: { ip: "192.0.2.1" },
    tls: { version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384" },
    certificate: { chain: pki.chain("alice") },
  });
