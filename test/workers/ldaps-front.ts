// An LDAPS front for the test slapd, for workerd: TLS terminated by dev/network.ts's proxy with a certificate from a
// CA that vitest.workers.config.ts made before miniflare loaded (miniflare reads NODE_EXTRA_CA_CERTS once, at
// import, which is before global setup and before slapd's own PKI exists), then plain LDAP to slapd on loopback.
// To the Worker it is what a production directory is: ldaps:// with a certificate it trusts.
import { readFile } from "node:fs/promises";
import { startCountingProxy } from "../../dev/network.ts";

/** Where vitest.workers.config.ts leaves the directory TLS files for global setup. */
export const WORKERD_TLS_ENV = "SMTPGATE_WORKERD_TLS";

export interface WorkerdTlsFiles {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
}

export interface LdapsFront {
  /** ldaps://127.0.0.1:PORT */
  url: string;
  close(): Promise<void>;
}

export async function startLdapsFront(
  files: WorkerdTlsFiles,
  target: { host: string; port: number },
): Promise<LdapsFront> {
  const [cert, key] = await Promise.all([readFile(files.certFile, "utf8"), readFile(files.keyFile, "utf8")]);
  const proxy = await startCountingProxy(target, { tls: { cert, key } });
  return { url: proxy.url("ldaps"), close: () => proxy.close() };
}
