// Loopback network stand-ins for directory failures and fronts: a TCP proxy that counts what a client sends to the
// server behind it (and, given a certificate, terminates TLS first: an LDAPS front for a plain-LDAP slapd), and a
// "black hole" that accepts connections and never answers (a hung directory), and a proxy that holds back the
// answers to some requests (one slow search on a shared connection).
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
    client.on("data", (chunk: Buffer) => {
      state.bytesToServer += chunk.length;
    });
    client.pipe(upstream).pipe(client);
    closeTogether(client, upstream, sockets);
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

/** Either side ending ends both; `sockets` holds them while they are open (to destroy them at close). */
function closeTogether(client: net.Socket, upstream: net.Socket, sockets: Set<net.Socket>): void {
  sockets.add(client).add(upstream);
  const end = (): void => {
    client.destroy();
    upstream.destroy();
    sockets.delete(client);
    sockets.delete(upstream);
  };
  client.on("error", end).on("close", end);
  upstream.on("error", end).on("close", end);
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

export interface HoldingProxy {
  url: string;
  /** Connections opened to it so far. */
  connections: number;
  /** Answers held back so far. */
  held: number;
  /** Destroys every connection through it (a directory that drops its clients); new ones are still accepted. */
  dropConnections(): void;
  close(): Promise<void>;
}

/**
 * A plain-LDAP proxy that forwards everything except the server's answers to requests containing `marker` (a
 * search for that user name, say): those it holds back for good. One slow request on a connection that carries
 * others, as a directory busy with one expensive search would give. It reads LDAP messages only as far as their
 * length and message ID (BER: SEQUENCE, length, INTEGER), so it cannot look inside TLS: use it with
 * startTls: false.
 */
export async function startHoldingProxy(target: { host: string; port: number }, marker: string): Promise<HoldingProxy> {
  const sockets = new Set<net.Socket>();
  const state = { connections: 0, held: 0 };
  const needle = Buffer.from(marker, "latin1");
  const server = net.createServer((client) => {
    state.connections += 1;
    const upstream = net.connect(target);
    const heldIds = new Set<number>();
    client.on(
      "data",
      ldapMessages((message, id) => {
        if (message.includes(needle)) heldIds.add(id);
        upstream.write(message);
      }),
    );
    upstream.on(
      "data",
      ldapMessages((message, id) => {
        if (heldIds.has(id)) state.held += 1;
        else client.write(message);
      }),
    );
    closeTogether(client, upstream, sockets);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `ldap://127.0.0.1:${port}`,
    get connections() {
      return state.connections;
    },
    get held() {
      return state.held;
    },
    dropConnections() {
      for (const socket of sockets) socket.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Splits a byte stream into whole LDAP messages, each handed on with its message ID. */
function ldapMessages(onMessage: (message: Buffer, id: number) => void): (chunk: Buffer) => void {
  let pending = Buffer.alloc(0);
  return (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      const header = berHeader(pending, 0);
      if (header === null || pending.length < header.start + header.length) return;
      const message = pending.subarray(0, header.start + header.length);
      pending = pending.subarray(message.length);
      const idHeader = berHeader(message, header.start);
      let id = 0;
      if (idHeader)
        for (let at = 0; at < idHeader.length; at += 1) id = id * 256 + (message[idHeader.start + at] as number);
      onMessage(message, id);
    }
  };
}

/** Where a BER element's contents start and how long they are, or null if its header is not all there yet. */
function berHeader(buffer: Buffer, offset: number): { start: number; length: number } | null {
  if (buffer.length < offset + 2) return null;
  const first = buffer[offset + 1] as number;
  if (first < 0x80) return { start: offset + 2, length: first };
  const bytes = first & 0x7f;
  if (buffer.length < offset + 2 + bytes) return null;
  let length = 0;
  for (let at = 0; at < bytes; at += 1) length = length * 256 + (buffer[offset + 2 + at] as number);
  return { start: offset + 2 + bytes, length };
}
