/**
 * Recipients the upstream refused at RCPT while it took the message for others: reported to the sender in a
 * delivery status notification (dsn.ts) before the client hears 250.
 */
import { SMTP_REPLIES } from "../contract/smtp-replies.ts";
import { buildDeliveryReport, type RefusedRecipient } from "./dsn.ts";
import { printable } from "./printable.ts";
import type { SessionState } from "./session.ts";
import { replyError, replyText } from "./smtp-server-adapter.ts";
import { countUpstreamFailure, stripReplyCode, type Upstream, type UpstreamError } from "./upstream.ts";

/** Nodemailer's record of one recipient the upstream refused at RCPT. */
export interface UpstreamRefusal {
  recipient?: string;
  response?: string;
}

/** The recipients the upstream refused while it took the message for others, each with its reply. */
export function refusedRecipients(info: {
  rejected?: string[];
  rejectedErrors?: UpstreamRefusal[];
}): RefusedRecipient[] {
  const errors = info.rejectedErrors ?? [];
  return (info.rejected ?? []).map((recipient) => ({
    recipient,
    response:
      errors.find((error) => error.recipient === recipient)?.response ??
      "550 5.0.0 Recipient refused (the upstream gave no reason)",
  }));
}

/** A message the upstream took for some of its recipients. */
export interface PartlyRelayed {
  state: SessionState;
  sessionId: string;
  from: string;
  to: string[];
  refused: RefusedRecipient[];
  /** The upstream's reply to the message. */
  response: string;
  bytes: number;
  /** The header section as relayed (Received: included). */
  headers: string;
  arrived: Date;
}

/**
 * The upstream took the message for some recipients and refused the others at RCPT. docs/edge-relay.md: the relay
 * stores nothing and loses nothing, so before the client hears 250 the sender gets a delivery status
 * notification (RFC 3464) naming each refused recipient and the upstream's reply, from the null sender
 * through the same upstream. A 4xx refusal is reported as well: the relay has no queue to retry from.
 *
 * If the notification cannot be sent:
 * - temporarily (upstream down, 4xx, timeout): 451 to the client, which keeps the message and retries. The
 *   recipients that already have it get it again on that retry: a duplicate is the price of losing nothing
 *   (RFC 5321 §6.1 prefers duplicates to loss), and a retry with the upstream working again ends it.
 * - permanently (the upstream refuses the notification, i.e. the sender's own address): 554 to the client,
 *   naming what was delivered and what was not. A retry could not make the sender reachable through this
 *   upstream, it would only repeat the duplicates until the client's queue lifetime; a 5xx now makes the
 *   client's MTA tell the sender by its own route (or shows the MUA user the reply).
 * The null sender `<>` is never notified (a bounce about a bounce can loop, RFC 3464 §2.3.3 / RFC 5321 §4.5.5):
 * 250, logged at error level.
 */
export async function reportRefused(upstream: Upstream, message: PartlyRelayed): Promise<string | Error> {
  const { config, metrics } = upstream;
  const { state, from, to, refused } = message;
  const delivered = to.length - refused.length;
  const list = refused.map((item) => `<${printable(item.recipient, 320)}> ${printable(item.response, 200)}`).join("; ");
  const fields = {
    refused: refused.map((item) => ({
      recipient: printable(item.recipient, 320),
      response: printable(item.response, 300),
    })),
    recipients: to.length,
    bytes: message.bytes,
  };
  const relayedPart = `relayed to ${delivered} of ${to.length} recipients (${printable(message.response, 100)})`;
  if (!from) {
    metrics.dsn.inc({ result: "suppressed" });
    metrics.messages.inc({ result: "relayed" });
    metrics.messageBytes.inc(undefined, message.bytes);
    state.log(
      "error",
      `ICID ${state.icid} Message from the null sender <> relayed to ${delivered} of ${to.length} recipients; the upstream refused the others and NO delivery status notification is sent (a bounce of a bounce could loop): ${list}`,
      fields,
    );
    return replyText(
      SMTP_REPLIES.messageRelayed,
      `Ok: ${relayedPart}; ${refused.length} refused by the upstream, not reported (null sender)`,
    );
  }
  const report = buildDeliveryReport({
    hostname: config.hostname,
    upstream: config.upstream.host,
    sender: from,
    refused,
    recipientCount: to.length,
    headers: message.headers,
    arrived: message.arrived,
    sessionId: message.sessionId,
  });
  try {
    const sent = await upstream.pool.send({ envelope: { from: "", to: [from] }, content: report });
    metrics.dsn.inc({ result: "sent" });
    metrics.messages.inc({ result: "relayed" });
    metrics.messageBytes.inc(undefined, message.bytes);
    state.log(
      "warn",
      `ICID ${state.icid} Message relayed to ${delivered} of ${to.length} recipients; the upstream refused ${refused.length}: ${list}; delivery status notification sent to <${printable(from, 320)}>: ${printable(sent.response ?? "", 200)}`,
      fields,
    );
    return replyText(
      SMTP_REPLIES.messageRelayed,
      `Ok: ${relayedPart}; ${refused.length} refused by the upstream, reported to the sender`,
    );
  } catch (error) {
    const failure = error as UpstreamError;
    countUpstreamFailure(upstream, failure);
    const reason = printable(failure.response ?? failure.message, 200);
    if (failure.responseCode && failure.responseCode >= 500) {
      metrics.dsn.inc({ result: "refused" });
      metrics.messages.inc({ result: "refused" });
      state.log(
        "error",
        `ICID ${state.icid} Message relayed to ${delivered} of ${to.length} recipients; the upstream refused ${list}; and it refused the delivery status notification to <${printable(from, 320)}>: ${reason}`,
        fields,
      );
      return replyError(
        SMTP_REPLIES.partlyDelivered,
        printable(
          `Delivered to ${delivered} of ${to.length} recipients only; the upstream refused ${list}; the notice to the sender was refused: ${stripReplyCode(failure.response ?? failure.message)}`,
          400,
        ),
      );
    }
    metrics.dsn.inc({ result: "failed" });
    metrics.messages.inc({ result: "tempfail" });
    state.log(
      "error",
      `ICID ${state.icid} Upstream refused ${list}; the delivery status notification to <${printable(from, 320)}> failed: ${reason}; answering 451 so that the client retries (the ${delivered} accepted recipients will get the message again)`,
      fields,
    );
    return replyError(
      SMTP_REPLIES.upstreamFailed,
      `${SMTP_REPLIES.upstreamFailed.text}: ${refused.length} of ${to.length} recipients refused and the sender could not be notified`,
    );
  }
}
