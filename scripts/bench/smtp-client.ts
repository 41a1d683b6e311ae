// A lean SMTP client for the session benchmark: one full submission per call (EHLO, STARTTLS, EHLO, AUTH PLAIN,
// MAIL, RCPT, DATA, QUIT) over node:net and node:tls, no pipelining, a fresh TLS handshake each time as real
// clients do. Any unexpected reply throws.
import net from "node:net";
import tls from "node:tls";

export interface SessionOptions {
  port: number;
  username: string;
  password: string;
  body: Buffer;
  ca: string;
}

class Replies {
  #buffer = "";
  #waiting: ((line: string) => void) | null = null;
  #error: Error | null = null;

  feed(chunk: Buffer): void {
    this.#buffer += chunk.toString("latin1");
    this.#drain();
  }

  fail(error: Error): void {
    this.#error = error;
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.("");
  }

  /** The next complete reply (last line of a multi-line reply). */
  next(): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.#error) return reject(this.#error);
      this.#waiting = (line) => (this.#error ? reject(this.#error) : resolve(line));
      this.#drain();
    });
  }

  #drain(): void {
    if (!this.#waiting) return;
    for (;;) {
      const end = this.#buffer.indexOf("\r\n");
      if (end < 0) return;
      const line = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      if (line[3] === "-") continue;
      const waiting = this.#waiting;
      this.#waiting = null;
      waiting(line);
      return;
    }
  }
}

const DATA_TERMINATOR = Buffer.from("\r\n.\r\n");

async function expect(replies: Replies, code: string, what: string): Promise<void> {
  const line = await replies.next();
  if (!line.startsWith(code)) throw new Error(`${what}: expected ${code}, got ${line}`);
}

export async function submitOnce(options: SessionOptions): Promise<void> {
  const plain = net.connect({ port: options.port, host: "127.0.0.1" });
  const replies = new Replies();
  plain.on("data", (chunk: Buffer) => replies.feed(chunk));
  plain.on("error", (error) => replies.fail(error));
  plain.on("close", () => replies.fail(new Error("connection closed")));
  try {
    await expect(replies, "220", "greeting");
    plain.write("EHLO bench.test\r\n");
    await expect(replies, "250", "EHLO");
    plain.write("STARTTLS\r\n");
    await expect(replies, "220", "STARTTLS");
    plain.removeAllListeners("data");
    const secure = tls.connect({ socket: plain, ca: options.ca, servername: "localhost" });
    const tlsReplies = new Replies();
    secure.on("data", (chunk: Buffer) => tlsReplies.feed(chunk));
    secure.on("error", (error) => tlsReplies.fail(error));
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", resolve);
      secure.once("error", reject);
    });
    secure.write("EHLO bench.test\r\n");
    await expect(tlsReplies, "250", "EHLO after TLS");
    secure.write(
      `AUTH PLAIN ${Buffer.from(`\u0000${options.username}\u0000${options.password}`).toString("base64")}\r\n`,
    );
    await expect(tlsReplies, "235", "AUTH");
    secure.write("MAIL FROM:<bench@example.com>\r\n");
    await expect(tlsReplies, "250", "MAIL");
    secure.write("RCPT TO:<sink@elsewhere.example>\r\n");
    await expect(tlsReplies, "250", "RCPT");
    secure.write("DATA\r\n");
    await expect(tlsReplies, "354", "DATA");
    // Body and terminating dot in one write: as two writes the dot waited ~45 ms for the
    // server's delayed ACK (Nagle), which dominated the session time.
    secure.write(Buffer.concat([options.body, DATA_TERMINATOR]));
    await expect(tlsReplies, "250", "end of DATA");
    secure.write("QUIT\r\n");
    await expect(tlsReplies, "221", "QUIT");
    secure.destroy();
  } finally {
    plain.destroy();
  }
}

/** A 10 kB message body (headers + text), CRLF line endings, no line starting with a dot. */
export function messageOfSize(bytes: number): Buffer {
  const header = "From: bench@example.com\r\nTo: sink@elsewhere.example\r\nSubject: smtpgate benchmark\r\n\r\n";
  const line = "The quick brown fox jumps over the lazy dog, 0123456789 abcdefghij\r\n";
  let body = header;
  while (body.length + line.length <= bytes) body += line;
  return Buffer.from(body);
}
