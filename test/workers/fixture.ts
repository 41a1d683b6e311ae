// What the Workers tests share between the Node side (global-setup.ts starts slapd and the CRL server, makes the
// client PKI) and the tests inside workerd: the facts handed over with provide/inject, and the configuration the
// Worker gets as its SMTPGATE_CONFIG binding. Pure data: this module is loaded in both runtimes.
import type { ConfigInput } from "../../api/config/schema.ts";

export const TEST_TOKEN = "workers-test-token-0123456789";
export const BIND_PASSWORD_BINDING = "BIND_PW";
export const ALLOWANCE = "(&(uid={u})(memberOf=cn=smtp-users,ou=groups,dc=example,dc=com))";
export const ASYNCOS_FILTER = "(&(objectClass=posixAccount)(caccn={cn})(cacserial={sn}))";

export interface WorkersFixture {
  /** ldap://127.0.0.1:PORT of the test slapd (plaintext: workerd cannot do StartTLS). */
  ldapUrl: string;
  /** ldaps://127.0.0.1:PORT in front of the same slapd; its CA reaches workerd through NODE_EXTRA_CA_CERTS. */
  ldapsUrl: string;
  /** ldaps://127.0.0.1:PORT of slapd itself, whose certificate comes from a CA workerd does not trust. */
  untrustedLdapsUrl: string;
  /** A loopback port nothing listens on: a directory that is down. */
  closedPort: number;
  /** http://127.0.0.1:PORT/intermediate.crl */
  crlUrl: string;
  rootPem: string;
  baseDn: string;
  serviceDn: string;
  servicePassword: string;
  /** Base64 DER chains (leaf first) of the client PKI's leaves the tests use. */
  chains: Record<"alice" | "bob" | "carol" | "expired" | "revoked" | "otherCa", string[]>;
}

declare module "vitest" {
  export interface ProvidedContext {
    workers: WorkersFixture;
  }
}

/** The Worker's configuration in the tests: flows A, B and C, a directory that is down, failover, LDAPS. */
export function workerTestConfig(fixture: WorkersFixture): ConfigInput {
  const directory = (hosts: string[]) => ({
    hosts,
    startTls: false,
    // Plain LDAP on loopback only: a deployed Worker uses ldaps:// (see infra/README.md).
    allowPlaintext: true,
    bind: { dn: fixture.serviceDn, password: { env: BIND_PASSWORD_BINDING } },
    baseDn: fixture.baseDn,
    connectTimeoutMs: 1_000,
    operationTimeoutMs: 2_000,
  });
  const certificateProfile = (extra: Record<string, unknown> = {}) => ({
    type: "certificate" as const,
    query: "asyncos",
    trustAnchors: { pem: fixture.rootPem },
    revocation: { crlSources: ["intermediate"] },
    ...extra,
  });
  const closed = `ldap://127.0.0.1:${fixture.closedPort}`;
  return {
    directories: {
      corp: directory([fixture.ldapUrl]),
      down: directory([closed]),
      failover: directory([closed, fixture.ldapUrl]),
      secure: { ...directory([fixture.ldapsUrl]), allowPlaintext: false },
      untrusted: { ...directory([fixture.untrustedLdapsUrl]), allowPlaintext: false },
    },
    smtpAuthQueries: {
      corp: { directory: "corp", allowance: { filter: ALLOWANCE } },
      down: { directory: "down", allowance: { filter: ALLOWANCE } },
      failover: { directory: "failover", allowance: { filter: ALLOWANCE } },
      secure: { directory: "secure", allowance: { filter: ALLOWANCE } },
      untrusted: { directory: "untrusted" },
    },
    certificateQueries: {
      asyncos: { directory: "corp", filter: ASYNCOS_FILTER },
      "asyncos-down": { directory: "down", filter: ASYNCOS_FILTER },
    },
    crlSources: { intermediate: { url: fixture.crlUrl, refreshSeconds: 60 } },
    authProfiles: {
      corp: { type: "ldap", query: "corp" },
      cached: { type: "ldap", query: "corp", cache: { positiveTtlSeconds: 300, negativeTtlSeconds: 60 } },
      down: { type: "ldap", query: "down" },
      failover: { type: "ldap", query: "failover" },
      secure: { type: "ldap", query: "secure" },
      untrusted: { type: "ldap", query: "untrusted" },
      "cert-only": certificateProfile(),
      "cert-or-ldap": certificateProfile({ allowAuthFallback: "corp" }),
      "cert-down": certificateProfile({ query: "asyncos-down" }),
      // nginx passes the leaf alone: the intermediate comes from the profile.
      "cert-or-ldap-leaf": certificateProfile({
        allowAuthFallback: "corp",
        intermediates: { pem: pemOf(fixture.chains.alice[1] as string) },
      }),
    },
    listeners: {
      submission: { authProfile: "corp" },
      lenient: { authProfile: "corp", onAllowanceFailure: "allow-temporarily" },
      cached: { authProfile: "cached" },
      down: { authProfile: "down" },
      failover: { authProfile: "failover" },
      secure: { authProfile: "secure" },
      untrusted: { authProfile: "untrusted" },
      a: { authProfile: "cert-only" },
      c: { authProfile: "cert-or-ldap" },
      "a-down": { authProfile: "cert-down" },
      nginx: { authProfile: "cert-or-ldap-leaf", upstream: NGINX_UPSTREAM },
      "nginx-down": { authProfile: "down", upstream: NGINX_UPSTREAM },
    },
    api: { tokens: [{ env: "TEST_TOKEN" }] },
  };
}

/** Where the nginx listeners hand allowed sessions (GET /v1/nginx/auth/:listener). */
export const NGINX_UPSTREAM = { address: "192.0.2.25", port: 2525 };

/** A base64 DER certificate as PEM. */
export function pemOf(base64Der: string): string {
  return `-----BEGIN CERTIFICATE-----\n${base64Der.replace(/(.{64})/g, "$1\n").replace(/\n$/, "")}\n-----END CERTIFICATE-----\n`;
}

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** The Worker's bindings in the tests (SMTPGATE_CONFIG as a JSON var, secrets as strings). */
export function workerTestBindings(fixture: WorkersFixture): Record<string, Json> {
  return {
    // Through JSON, as wrangler hands a [vars] table to the Worker.
    SMTPGATE_CONFIG: JSON.parse(JSON.stringify(workerTestConfig(fixture))) as Json,
    TEST_TOKEN,
    [BIND_PASSWORD_BINDING]: fixture.servicePassword,
  };
}
