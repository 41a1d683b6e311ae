// An upstream MTA stand-in: an smtp-server on loopback that keeps every message it accepts (in memory, and as a
// .eml file when given a folder), and can be told to refuse (4xx/5xx) or to hang up, for the relay's tests and
// the demo.
import { mkdir, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
// Replies worded with their own enhanced code (as a real MTA words them) are sent as they are.
import { EnhancedCodeSmtpServer } from "../../edge-relay/smtp-server-adapter.ts";

export interface SunkMessage {
  from: string;
  to: string[];
  data: Buffer;
  file?: string;
}

export interface Sink {
  port: number;
  messages: SunkMessage[];
  /** Answer DATA (or RCPT, with `at: "rcpt"`) with this error until cleared with null. */
  refuse(reply: { code: number; text: string; at?: "rcpt" | "data" } | null): void;
  close(): Promise<void>;
}

export async function startSink(
  options: { folder?: string; onMessage?: (message: SunkMessage) => void; port?: number } = {},
): Promise<Sink> {
  const messages: SunkMessage[] = [];
  let refusal: { code: number; text: string; at?: "rcpt" | "data" } | null = null;
  let counter = 0;
  if (options.folder) await mkdir(options.folder, { recursive: true });
  const fail = (reply: { code: number; text: string }) =>
    Object.assign(new Error(reply.text), { responseCode: reply.code });
  const server = new EnhancedCodeSmtpServer({
    name: "sink.test",
    authOptional: true,
    disabledCommands: ["AUTH", "STARTTLS"],
    hideENHANCEDSTATUSCODES: false,
    disableReverseLookup: true,
    size: 256 * 1024 * 1024,
    logger: false,
    onRcptTo(_address, _session, callback) {
      if (refusal?.at === "rcpt") return callback(fail(refusal));
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        if (refusal && refusal.at !== "rcpt") return callback(fail(refusal));
        const message: SunkMessage = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
          data: Buffer.concat(chunks),
        };
        const done = () => {
          messages.push(message);
          options.onMessage?.(message);
          callback(null, `Ok: queued as SINK${messages.length}`);
        };
        if (!options.folder) return done();
        counter += 1;
        const file = join(options.folder, `${new Date().toISOString().replace(/[:.]/g, "-")}-${counter}.eml`);
        message.file = file;
        writeFile(file, message.data).then(done, (error: Error) => callback(error));
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const port = (server as unknown as { server: { address(): AddressInfo } }).server.address().port;
  return {
    port,
    messages,
    refuse(reply) {
      refusal = reply;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
