// An LDAPS front for the test slapd, for workerd: TLS terminated here with a certificate from a CA that
// vitest.workers.config.ts made before miniflare loaded (miniflare reads NODE_EXTRA_CA_CERTS once, at import,
// which is before global setup and before slapd's own PKI exists), then plain LDAP to slapd on loopback.
// To the Worker it is what a production directory is: ldaps:// with a certificate it trusts.
import net from "node:net";
import { readFile } from "node:fs/promises";
import tls from "node:tls";

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
  const sockets = new Set<net.Socket>();
  const [cert, key] = await Promise.all([readFile(files.certFile, "utf8"), readFile(files.keyFile, "utf8")]);
  const server = tls.createServer({ cert, key, minVersion: "TLSv1.2" }, (client) => {
    const upstream = net.connect(target);
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `ldaps://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
