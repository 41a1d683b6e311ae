/**
 * The upstream hand-off: DATA streamed to the upstream as it arrives, the client's bytes as they are (no message
 * composed, upstream-connections.ts), under a `Received:` header that records the authentication; the client
 * hears 250 only after the upstream accepted, otherwise the upstream's refusal or a 4xx (docs/edge-relay.md: the
 * relay stores nothing and loses nothing).
 * Recipients refused while others were accepted go to refused-recipients.ts. Under `upstream.xclient` each
 * client's message has an upstream connection of its own that first says who the client is (xclient.ts).
 */
import type { SMTPServerDataStream, SMTPServerSession } from "smtp-server";
import { SMTP_REPLIES } from "../contract/smtp-replies.ts";
import { DATA_CHECKS } from "../mail-flow/checks/data.ts";
import { ByteLimit } from "./byte-limit.ts";
import { printable } from "./printable.ts";
import { refusedRecipients, reportRefused, type UpstreamRefusal } from "./refused-recipients.ts";
import { runStage, tlsProtocolOf, type SessionState } from "./session.ts";
import { replyError, replyText } from "./smtp-server-adapter.ts";
import {
  connectionOptions,
  countUpstreamFailure,
  stripReplyCode,
  type Upstream,
  type UpstreamError,
} from "./upstream.ts";
import { sendOnOwnConnection, Slots, type OutgoingMessage, type SentInfo } from "./upstream-connections.ts";
import { announceClient, XclientFailure } from "./xclient.ts";

export class Delivery {
  readonly #upstream: Upstream;
  /** Aborts of the upstream transactions whose DATA is still streaming in (close() ends them after the grace). */
  readonly #streaming = new Set<() => void>();
  /** Under upstream.xclient: the per-message connections open at once, at most upstream.maxConnections. */
  readonly #connections: Slots;

  constructor(upstream: Upstream) {
    this.#upstream = upstream;
    this.#connections = new Slots(upstream.config.upstream.maxConnections);
  }

  get messagesStreaming(): number {
    return this.#streaming.size;
  }

  /** A message still streaming in is not relayed: the client is told 421 and sends it again elsewhere or later. */
  abortStreaming(): void {
    for (const abort of this.#streaming) abort();
  }

  /** Streams DATA to the upstream; the reply for the client once the upstream answered (or failed). */
  async relay(stream: SMTPServerDataStream, session: SMTPServerSession, state: SessionState): Promise<string | Error> {
    const { config, metrics } = this.#upstream;
    const arrived = new Date();
    const received = receivedHeader(session, state, config.hostname);
    // What the upstream gets: the trace header, then the client's bytes as they come (the counter passes them on).
    const counter = new ByteLimit(state.senderGroup.policy.maxMessageBytes, received);
    // 'end': the client's DATA is complete. 'close' without 'end': the client went away in the middle (smtp-server
    // destroys the stream then), or close() ended the session after the grace period. Either way the upstream
    // transaction is aborted before its final dot, so the upstream never delivers a message cut short.
    let complete = false;
    let aborted: string | null = null;
    const abort = (reason: string) => {
      if (complete || aborted !== null) return;
      aborted = reason;
      counter.destroy(new Error(reason));
    };
    const ended = new Promise<void>((resolve) => {
      stream.once("end", () => {
        complete = true;
        resolve();
      });
      stream.once("close", () => {
        abort("the client connection closed before the end of DATA");
        resolve();
      });
    });
    // With a listener, smtp-server destroys the stream with an error instead of silently: no crash either way.
    stream.once("error", () => abort("the client connection closed before the end of DATA"));
    const abortOnShutdown = () => abort("the relay is shutting down");
    this.#streaming.add(abortOnShutdown);
    void ended.then(() => this.#streaming.delete(abortOnShutdown));

    // Past the limit the counter fails, which aborts the upstream transaction at once (an unhandled stream error
    // would kill the process); the client's DATA is still read to its end.
    counter.on("error", () => {
      stream.unpipe(counter);
      stream.resume();
    });
    stream.pipe(counter);
    const sizeRefusal = (): Error | null => {
      const facts = { policy: state.senderGroup.policy, bytes: counter.bytes, overFrontLimit: stream.sizeExceeded };
      const refusal = runStage(state, "DATA", DATA_CHECKS, facts, "message");
      if (refusal) metrics.messages.inc({ result: "too-big" });
      return refusal && replyError(refusal.reply);
    };
    const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : "";
    const to = session.envelope.rcptTo.map((recipient) => recipient.address);
    try {
      const info: SentInfo & { rejectedErrors?: UpstreamRefusal[] } = await this.#send(
        { envelope: { from, to }, content: counter },
        session,
        state,
      );
      await ended;
      const tooBig = sizeRefusal();
      if (tooBig) return tooBig;
      const response = printable(info.response ?? "", 200);
      const refused = refusedRecipients(info);
      if (refused.length === 0) {
        metrics.messages.inc({ result: "relayed" });
        metrics.messageBytes.inc(undefined, counter.bytes);
        state.log(
          "info",
          `ICID ${state.icid} Message relayed to ${config.upstream.host}:${config.upstream.port}: ${response}`,
          { recipients: to.length, bytes: counter.bytes },
        );
        return replyText(
          SMTP_REPLIES.messageRelayed,
          `${SMTP_REPLIES.messageRelayed.text} (${printable(info.response ?? "", 120)})`,
        );
      }
      return await reportRefused(this.#upstream, {
        state,
        sessionId: `${session.id}`,
        from,
        to,
        refused,
        response,
        bytes: counter.bytes,
        headers: received + counter.headers,
        arrived,
      });
    } catch (error) {
      // Whatever happened upstream, read the rest of the client's DATA so the session stays in step.
      stream.unpipe(counter);
      stream.resume();
      await ended;
      const tooBig = sizeRefusal();
      if (tooBig) return tooBig;
      if (aborted !== null) {
        // The client is gone (or about to be told 421): it retries a message it never saw accepted.
        state.log("info", `ICID ${state.icid} Upstream transaction aborted (${aborted}): not relayed`);
        return replyError(SMTP_REPLIES.upstreamFailed);
      }
      if (error instanceof XclientFailure) return this.#notAnnounced(error, state);
      const failure = error as UpstreamError;
      countUpstreamFailure(this.#upstream, failure);
      state.log(
        "warn",
        `ICID ${state.icid} Upstream delivery failed: ${printable(failure.response ?? failure.message, 300)}`,
        { code: failure.code, responseCode: failure.responseCode },
      );
      if (failure.responseCode && failure.responseCode >= 500 && failure.responseCode < 600) {
        // Every recipient refused (or the message itself): the client gets the upstream's own reply.
        metrics.messages.inc({ result: "refused" });
        const enhanced = /\b5\.\d{1,3}\.\d{1,3}\b/.exec(failure.response ?? "")?.[0] ?? "5.0.0";
        return replyError(
          { code: failure.responseCode, enhanced, text: "" },
          `Upstream refused the message: ${printable(stripReplyCode(failure.response ?? ""), 200)}`,
        );
      }
      metrics.messages.inc({ result: "tempfail" });
      if (failure.responseCode) {
        // docs/edge-relay.md: a 4xx with the upstream's reason.
        const reason = printable(stripReplyCode(failure.response ?? ""), 200);
        return replyError(
          SMTP_REPLIES.upstreamFailed,
          reason ? `${SMTP_REPLIES.upstreamFailed.text}: ${reason}` : SMTP_REPLIES.upstreamFailed.text,
        );
      }
      return replyError(SMTP_REPLIES.upstreamUnavailable);
    }
  }

  /**
   * The pool; under upstream.xclient a connection of this message's own that announces the client first. The
   * relay's own messages (delivery status notifications) always go through the pool, as the relay's.
   */
  #send(message: OutgoingMessage, session: SMTPServerSession, state: SessionState): Promise<SentInfo> {
    const { config, pool, upstreamCa } = this.#upstream;
    const mode = config.upstream.xclient;
    if (mode === "off") return pool.send(message);
    const announce = announceClient({
      mode,
      client: {
        address: session.remoteAddress,
        port: session.remotePort,
        helo: session.hostNameAppearsAs || null,
        login: state.identity,
      },
      relayName: config.hostname,
      onNotOffered: () =>
        state.log(
          "warn",
          `ICID ${state.icid} Upstream ${config.upstream.host}:${config.upstream.port} does not offer XCLIENT: it sees this relay as the client (upstream.xclient: auto)`,
          { xclient: "not-offered" },
        ),
    });
    return this.#connections.hold(() => sendOnOwnConnection(connectionOptions(config, upstreamCa), announce, message));
  }

  /** The upstream could not be told who the client is: not relayed, so it never takes the relay for the client. */
  #notAnnounced(failure: XclientFailure, state: SessionState): Error {
    const { config, metrics } = this.#upstream;
    metrics.upstreamErrors.inc();
    metrics.messages.inc({ result: "tempfail" });
    const reply = failure.reply ? `: ${printable(failure.reply, 200)}` : "";
    state.log(
      "warn",
      `ICID ${state.icid} Upstream ${config.upstream.host}:${config.upstream.port}: ${failure.summary}${reply}; not relayed (upstream.xclient: ${config.upstream.xclient})`,
      { xclient: failure.reason },
    );
    return replyError(
      failure.reason === "not-offered" ? SMTP_REPLIES.upstreamWithoutXclient : SMTP_REPLIES.upstreamFailed,
    );
  }
}

/** RFC 5321 §4.4 trace field, with the RFC 3848 protocol type; nothing secret, only the identity. */
function receivedHeader(session: SMTPServerSession, state: SessionState, hostname: string): string {
  const protocol = `ESMTP${session.secure ? "S" : ""}${state.identity ? "A" : ""}`;
  const helo = printable(String(session.hostNameAppearsAs || "unknown"), 100).replace(/[()]/g, "");
  const tls =
    session.secure && session.tlsOptions
      ? ` (${printable(tlsProtocolOf(session), 20)} ${printable(session.tlsOptions.name, 60)})`
      : "";
  const auth = state.identity
    ? `\r\n\t(authenticated as ${printable(state.identity, 100).replace(/[()]/g, "")} by ${state.method ?? "smtpgate"})`
    : "";
  const recipient =
    session.envelope.rcptTo.length === 1
      ? `\r\n\tfor <${printable(session.envelope.rcptTo[0]?.address ?? "", 320)}>`
      : "";
  return `Received: from ${helo} ([${session.remoteAddress}])\r\n\tby ${hostname} (smtpgate) with ${protocol} id ${session.id}${tls}${auth}${recipient};\r\n\t${new Date().toUTCString().replace("GMT", "+0000")}\r\n`;
}
