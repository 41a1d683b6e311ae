// Node side of the Workers tests: a private slapd (seed + the CAC schema and certificate entries), the client
// PKI and a CRL server on loopback, before workerd starts. The tests inside workerd get the facts with inject(),
// and the Worker gets its configuration as a binding (vitest.workers.config.ts).
import { rm } from "node:fs/promises";
import type { TestProject } from "vitest/node";
import { startDirectoryWithPki } from "../../dev/directory-with-pki.ts";
import { freePorts } from "../../dev/ports.ts";
import { SEED } from "../../dev/slapd/index.ts";
import type { WorkersFixture } from "./fixture.ts";
import { startLdapsFront, WORKERD_TLS_ENV, type WorkerdTlsFiles } from "./ldaps-front.ts";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const directory = await startDirectoryWithPki();
  const { slapd, pki, crls: crlServer } = directory;
  const [closedPort] = await freePorts(1);
  const tlsFiles = JSON.parse(process.env[WORKERD_TLS_ENV] ?? "null") as WorkerdTlsFiles | null;
  if (!tlsFiles) throw new Error(`${WORKERD_TLS_ENV} is not set: run these tests with vitest.workers.config.ts`);
  const ldaps = await startLdapsFront(tlsFiles, { host: "127.0.0.1", port: slapd.ports.ldap });

  const fixture: WorkersFixture = {
    ldapUrl: slapd.ldapUrl,
    ldapsUrl: ldaps.url,
    untrustedLdapsUrl: slapd.ldapsUrl,
    closedPort: closedPort as number,
    crlUrl: `${crlServer.baseUrl}/intermediate.crl`,
    rootPem: pki.rootPem,
    baseDn: SEED.baseDn,
    serviceDn: SEED.serviceDn,
    servicePassword: SEED.servicePassword,
    chains: {
      alice: pki.chain("alice"),
      bob: pki.chain("bob"),
      carol: pki.chain("carol"),
      expired: pki.chain("expired"),
      revoked: pki.chain("revoked"),
      otherCa: pki.chain("otherCa"),
    },
  };
  project.provide("workers", fixture);

  return async () => {
    await ldaps.close();
    await directory.close();
    await rm(tlsFiles.dir, { recursive: true, force: true });
  };
}
