// A TCP tap: listens on a loopback port and forwards each connection to a target, recording what each side sent.
// For recording real protocol transcripts (Postfix talking to an auth or policy server) as test fixtures.
import { connect, createServer, type AddressInfo, type Server } from "node:net";

export interface TappedChunk {
  /** Which connection (1, 2, ...), in the order they were accepted. */
  connection: number;
  /** "client" → target, or "server" → client. */
  from: "client" | "server";
  data: string;
}

export interface SocketTap {
  port: number;
  chunks: TappedChunk[];
  /** What one side sent on one connection, joined. */
  sent(connection: number, from: TappedChunk["from"]): string;
  close(): Promise<void>;
}

export async function startSocketTap(target: { host: string; port: number }): Promise<SocketTap> {
  const chunks: TappedChunk[] = [];
  let connections = 0;
  const server: Server = createServer(function onTappedConnection(client) {
    const connection = (connections += 1);
    const upstream = connect(target);
    client.on("data", (data: Buffer) => {
      chunks.push({ connection, from: "client", data: data.toString("latin1") });
      upstream.write(data);
    });
    upstream.on("data", (data: Buffer) => {
      chunks.push({ connection, from: "server", data: data.toString("latin1") });
      client.write(data);
    });
    client.on("end", () => upstream.end());
    upstream.on("end", () => client.end());
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.resetAndDestroy());
    // A reset from the target reaches the client as a reset (a close would read differently).
    upstream.on("close", (hadError) => (hadError ? client.resetAndDestroy() : undefined));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    chunks,
    sent: (connection, from) =>
      chunks
        .filter((chunk) => chunk.connection === connection && chunk.from === from)
        .map((chunk) => chunk.data)
        .join(""),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
