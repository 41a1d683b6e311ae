// A purpose-built upstream MTA for the relay's delivery-status tests (the shared sink refuses all or nothing):
// an smtp-server on loopback that refuses chosen recipients at RCPT, can refuse the null sender (the relay's
// bounces) at MAIL, and keeps every message it accepts with its envelope.
import type { AddressInfo } from "node:net";
import { EnhancedCodeSmtpServer } from "../../edge-relay/smtp-server-adapter.ts";
import type { SunkMessage } from "../harness/sink.ts";

export interface UpstreamReply {
  code: number;
  /** With its enhanced code first, e.g. "5.1.1 no such user" (EnhancedCodeSmtpServer sends it as it is). */
  text: string;
}

export interface TestUpstream {
  port: number;
  messages: SunkMessage[];
  /** Refuse RCPT TO this address (case-insensitive) with `reply`, or accept it again with null. */
  refuseRecipient(address: string, reply: UpstreamReply | null): void;
  /** Refuse MAIL FROM:<> with `reply` (null: accept). */
  refuseNullSender(reply: UpstreamReply | null): void;
  /** Messages whose envelope sender is the null sender (the relay's delivery status notifications). */
  bounces(): SunkMessage[];
  close(): Promise<void>;
}

export async function startTestUpstream(): Promise<TestUpstream> {
  const messages: SunkMessage[] = [];
  const refusedRecipients = new Map<string, UpstreamReply>();
  let nullSenderRefusal: UpstreamReply | null = null;
  const fail = (reply: UpstreamReply) => Object.assign(new Error(reply.text), { responseCode: reply.code });
  const server = new EnhancedCodeSmtpServer({
    name: "upstream.test",
    authOptional: true,
    disabledCommands: ["AUTH", "STARTTLS"],
    hideENHANCEDSTATUSCODES: false,
    disableReverseLookup: true,
    closeTimeout: 1_000,
    logger: false,
    onMailFrom(address, _session, callback) {
      if (address.address === "" && nullSenderRefusal) return callback(fail(nullSenderRefusal));
      callback();
    },
    onRcptTo(address, _session, callback) {
      const refusal = refusedRecipients.get(address.address.toLowerCase());
      if (refusal) return callback(fail(refusal));
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
          data: Buffer.concat(chunks),
        });
        callback(null, `2.6.0 Ok: queued as UP${messages.length}`);
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server as unknown as { server: { address(): AddressInfo } }).server.address().port;
  return {
    port,
    messages,
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
