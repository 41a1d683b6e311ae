// Loopback network stand-ins for directory failures and fronts: a TCP proxy that counts what a client sends to the
// server behind it (and, given a certificate, terminates TLS first: an LDAPS front for a plain-LDAP slapd), and a
// "black hole" that accepts connections and never answers (a hung directory).
import net from "node:net";
import tls from "node:tls";

export interface CountingProxy {
  url: (scheme?: "ldap" | "ldaps") => string;
  port: number;
  /** Bytes the API sent towards the directory, and connections it opened, since the last reset. */
  bytesToServer: number;
  connections: number;
  reset(): void;
  close(): Promise<void>;
}

export interface CountingProxyOptions {
  /** Terminate TLS with this certificate and key (PEM): clients speak TLS to the proxy, plain TCP goes on. */
  tls?: { cert: string; key: string };
}

export async function startCountingProxy(
  target: { host: string; port: number },
  options: CountingProxyOptions = {},
): Promise<CountingProxy> {
  const sockets = new Set<net.Socket>();
  const state = { bytesToServer: 0, connections: 0 };
  const onClient = (client: net.Socket): void => {
    state.connections += 1;
    const upstream = net.connect(target);
    sockets.add(client).add(upstream);
    client.on("data", (chunk: Buffer) => {
      state.bytesToServer += chunk.length;
    });
    client.pipe(upstream).pipe(client);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  };
  const server = options.tls
    ? tls.createServer({ ...options.tls, minVersion: "TLSv1.2" }, onClient).on("tlsClientError", () => {})
    : net.createServer(onClient);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: (scheme = options.tls ? "ldaps" : "ldap") => `${scheme}://127.0.0.1:${port}`,
    get bytesToServer() {
      return state.bytesToServer;
    },
    get connections() {
      return state.connections;
    },
    reset() {
      state.bytesToServer = 0;
      state.connections = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface BlackHole {
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Accepts TCP connections and never sends a byte: every LDAP operation against it times out. */
export async function startBlackHole(): Promise<BlackHole> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `ldap://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
