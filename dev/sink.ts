// An upstream MTA stand-in: an smtp-server on loopback that keeps every message it accepts with its envelope (in
// memory, and as a .eml file when given a folder), and can be told to refuse: every RCPT or DATA, chosen
// recipients, or the null sender (the relay's bounces), or to hang up. For the relay's tests, the demo and the
// benchmark.
import { mkdir, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
// Replies worded with their own enhanced code (as a real MTA words them) are sent as they are.
import { EnhancedCodeSmtpServer } from "../edge-relay/smtp-server-adapter.ts";

export interface SunkMessage {
  from: string;
  to: string[];
  data: Buffer;
  file?: string;
  /** With `xclient`: the client's address and login as the proxy's XCLIENT gave them (ADDR=, LOGIN=). */
  xclient?: { addr: string; login: string | null };
}

export interface SinkReply {
  code: number;
  /** With its enhanced code first where one matters, e.g. "5.1.1 no such user" (sent as it is). */
  text: string;
}

export interface Sink {
  port: number;
  messages: SunkMessage[];
  /** Answer DATA (or every RCPT, with `at: "rcpt"`) with this error until cleared with null. */
  refuse(reply: (SinkReply & { at?: "rcpt" | "data" }) | null): void;
  /** Refuse RCPT TO this address (case-insensitive) with `reply`, or accept it again with null. */
  refuseRecipient(address: string, reply: SinkReply | null): void;
  /** Refuse MAIL FROM:<> with `reply` (null: accept). */
  refuseNullSender(reply: SinkReply | null): void;
  /** Messages whose envelope sender is the null sender (the relay's delivery status notifications). */
  bounces(): SunkMessage[];
  close(): Promise<void>;
}

export interface SinkOptions {
  /** Write each message to this folder as `<time>-<n>.eml` (made if missing). */
  folder?: string;
  onMessage?: (message: SunkMessage) => void;
  /** Default: a free port. */
  port?: number;
  /** How long close() lets open connections finish (default: smtp-server's). */
  closeTimeoutMs?: number;
  /** Accept XCLIENT (as Postfix's smtpd_authorized_xclient_hosts does) from anyone: for nginx's `xclient on`. */
  xclient?: boolean;
}

export async function startSink(options: SinkOptions = {}): Promise<Sink> {
  const messages: SunkMessage[] = [];
  let refusal: (SinkReply & { at?: "rcpt" | "data" }) | null = null;
  const refusedRecipients = new Map<string, SinkReply>();
  let nullSenderRefusal: SinkReply | null = null;
  let counter = 0;
  if (options.folder) await mkdir(options.folder, { recursive: true });
  const fail = (reply: SinkReply) => Object.assign(new Error(reply.text), { responseCode: reply.code });
  const server = new EnhancedCodeSmtpServer({
    name: "sink.test",
    authOptional: true,
    disabledCommands: ["AUTH", "STARTTLS"],
    hideENHANCEDSTATUSCODES: false,
    disableReverseLookup: true,
    size: 256 * 1024 * 1024,
    ...(options.closeTimeoutMs === undefined ? {} : { closeTimeout: options.closeTimeoutMs }),
    logger: false,
    ...(options.xclient
      ? {
          useXClient: true,
          // XCLIENT LOGIN= is the proxy's word for who authenticated: taken as it is, as Postfix takes it.
          onAuth(
            auth: { method: string; username?: string },
            _session: unknown,
            callback: (error: Error | null, response?: { user: string }) => void,
          ) {
            if (auth.method === "XCLIENT" && auth.username) return callback(null, { user: auth.username });
            callback(new Error("Authentication not available"));
          },
        }
      : {}),
    onMailFrom(address, _session, callback) {
      if (address.address === "" && nullSenderRefusal) return callback(fail(nullSenderRefusal));
      callback();
    },
    onRcptTo(address, _session, callback) {
      const refusedRecipient = refusedRecipients.get(address.address.toLowerCase());
      if (refusedRecipient) return callback(fail(refusedRecipient));
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
          ...(options.xclient
            ? {
                xclient: { addr: session.remoteAddress, login: typeof session.user === "string" ? session.user : null },
              }
            : {}),
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
    refuseRecipient(address, reply) {
      if (reply) refusedRecipients.set(address.toLowerCase(), reply);
      else refusedRecipients.delete(address.toLowerCase());
    },
    refuseNullSender(reply) {
      nullSenderRefusal = reply;
    },
    bounces: () => messages.filter((message) => message.from === ""),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
