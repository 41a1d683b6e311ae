// The upstream connections against an upstream that hangs up at the worst moment: a scripted SMTP server on a
// real socket, nodemailer's real SMTPConnection (the relay's own upstream runs against a real sink and a real
// Postfix in test/relay/).
import { createServer, type Server, type Socket } from "node:net";
import { PassThrough } from "node:stream";
import type { SMTPConnectionCustomAuthHandler } from "nodemailer/lib/smtp-connection";
import { afterEach, describe, expect, it } from "vitest";
import { sendOnOwnConnection, UpstreamPool, type OutgoingMessage } from "../../edge-relay/upstream-connections.ts";

let server: Server | undefined;

afterEach(async () => {
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

/**
 * An SMTP server that accepts everything but `drop@…` (550 at RCPT), and hangs up on RSET and on XCLIENT:
 * the replies the relay waits for never come.
 */
async function hangingUpstream(): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  server = createServer((socket: Socket) => {
    connections += 1;
    let inData = false;
    let buffered = "";
    socket.write("220 upstream ESMTP\r\n");
    socket.on("data", (chunk: Buffer) => {
      buffered += chunk.toString("latin1");
      for (let end = buffered.indexOf("\r\n"); end !== -1; end = buffered.indexOf("\r\n")) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (inData) {
          if (line === ".") {
            inData = false;
            socket.write("250 2.0.0 queued\r\n");
          }
        } else if (/^EHLO/i.test(line)) socket.write("250-upstream\r\n250 XCLIENT ADDR NAME\r\n");
        else if (/^(RSET|XCLIENT)/i.test(line)) socket.destroy();
        else if (/^RCPT TO:<drop@/i.test(line)) socket.write("550 5.1.1 no such user\r\n");
        else if (/^DATA/i.test(line)) {
          inData = true;
          socket.write("354 go ahead\r\n");
        } else if (/^QUIT/i.test(line)) socket.end("221 bye\r\n");
        else socket.write("250 ok\r\n");
      }
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (typeof address !== "object" || address === null) throw new Error("no port");
  return { port: address.port, connections: () => connections };
}

const message = (to: string, content: OutgoingMessage["content"] = "Subject: t\r\n\r\nhello\r\n") => ({
  envelope: { from: "alice@example.com", to: [to] },
  content,
});

const within = <T>(promise: Promise<T>, ms: number): Promise<T | "no answer"> =>
  Promise.race([promise, new Promise<"no answer">((resolve) => setTimeout(() => resolve("no answer"), ms))]);

describe("the upstream pool", () => {
  it("answers a refusal whose RSET the upstream hangs up on, and frees its slot for the next message", async () => {
    const upstream = await hangingUpstream();
    const pool = new UpstreamPool({ host: "127.0.0.1", port: upstream.port, socketTimeout: 30_000 }, 1);
    try {
      const refused = await within(
        pool.send(message("drop@example.net")).catch((error: { responseCode?: number }) => error.responseCode),
        2_000,
      );
      expect(refused).toBe(550);
      const sent = await within(pool.send(message("bob@example.net")), 2_000);
      expect(sent).toMatchObject({ accepted: ["bob@example.net"] });
      expect(upstream.connections()).toBe(2);
    } finally {
      pool.close();
    }
  });

  it("sends nothing for a message whose stream ended before its turn, and holds no connection for it", async () => {
    const upstream = await hangingUpstream();
    const pool = new UpstreamPool({ host: "127.0.0.1", port: upstream.port, socketTimeout: 30_000 }, 1);
    try {
      const stream = new PassThrough();
      stream.destroy();
      const outcome = await within(
        pool.send(message("bob@example.net", stream)).catch((error: Error) => error.message),
        2_000,
      );
      expect(outcome).toBe("the message ended before it reached the upstream");
      expect(upstream.connections()).toBe(0);
    } finally {
      pool.close();
    }
  });
});

describe("a connection of its own (XCLIENT)", () => {
  it("fails the message when the upstream hangs up on XCLIENT, instead of waiting for ever", async () => {
    const upstream = await hangingUpstream();
    const announce: SMTPConnectionCustomAuthHandler = async (context) => {
      await context.sendCommand("XCLIENT ADDR=192.0.2.1");
      context.resolve();
    };
    const outcome = await within(
      sendOnOwnConnection(
        { host: "127.0.0.1", port: upstream.port, socketTimeout: 30_000 },
        announce,
        message("bob@example.net"),
      ).catch((error: { code?: string }) => error.code),
      2_000,
    );
    expect(outcome).toBe("ECONNECTION");
  });
});
