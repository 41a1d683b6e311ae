/**
 * Delivery status notifications (RFC 3464) for recipients the upstream refused at RCPT while it accepted
 * others. The relay keeps no queue, so such a recipient is told about at once, in a bounce to the envelope
 * sender, sent from the null sender `<>` (RFC 5321 §4.5.5) through the same upstream before the client hears
 * 250: nothing the relay answered 250 for is silently lost.
 *
 * The report is multipart/report; report-type=delivery-status: a text/plain part for people, a
 * message/delivery-status part for programs, and the headers of the message (text/rfc822-headers; the relay
 * never holds the body).
 */
import { randomUUID } from "node:crypto";

/** One recipient the upstream refused, with the upstream's reply to its RCPT TO. */
export interface RefusedRecipient {
  recipient: string;
  /** The upstream's reply line, e.g. "550 5.1.1 <bob@example.com>: no such user". */
  response: string;
}

export interface DeliveryReport {
  /** The relay's name: Reporting-MTA, and the domain of MAILER-DAEMON. */
  hostname: string;
  /** The upstream that refused: Remote-MTA. */
  upstream: string;
  /** The envelope sender of the message, the report's recipient. */
  sender: string;
  refused: readonly RefusedRecipient[];
  /** How many recipients the message had in all. */
  recipientCount: number;
  /** The message's headers as relayed (CRLF line ends), or "" when none were read. */
  headers: string;
  /** When the message arrived (Arrival-Date) and the report's Date. */
  arrived: Date;
  now?: Date;
  /** Tells the reader where to look in the relay's logs. */
  sessionId?: string;
}

/** The enhanced status code of an SMTP reply (RFC 3463), else one derived from its basic code. */
export function statusOf(response: string): string {
  const enhanced = /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/.exec(response)?.[1];
  if (enhanced) return enhanced;
  const klass = response.charAt(0);
  return klass === "4" || klass === "5" ? `${klass}.0.0` : "5.0.0";
}

/** Whether a reply means "never" (5xx) rather than "not now" (4xx). */
export function isPermanent(response: string): boolean {
  return response.startsWith("5");
}

/** The whole report, ready for the upstream: CRLF line ends, every line below 998 characters. */
export function buildDeliveryReport(report: DeliveryReport): string {
  const now = report.now ?? new Date();
  const boundary = `smtpgate-dsn-${randomUUID()}`;
  const messageId = /^message-id:\s*(<[^>\r\n]{1,900}>)/im.exec(report.headers)?.[1];
  const permanent = report.refused.filter((item) => isPermanent(item.response));
  const temporary = report.refused.filter((item) => !isPermanent(item.response));
  const list = (items: readonly RefusedRecipient[]) =>
    items.map((item) => `  <${clean(item.recipient, 320)}>\r\n      ${clean(item.response, 400)}`).join("\r\n");

  const text = [
    `This is the mail system at host ${report.hostname}.`,
    "",
    `Your message was delivered to ${report.recipientCount - report.refused.length} of its ${report.recipientCount} recipients. The next mail`,
    `server (${report.upstream}) refused the recipients below, and this relay keeps no queue:`,
    "the message was NOT delivered to them and will not be retried.",
    ...(permanent.length > 0 ? ["", "Refused permanently:", "", list(permanent)] : []),
    ...(temporary.length > 0
      ? ["", "Refused for now (send the message to them again later):", "", list(temporary)]
      : []),
    "",
    "The headers of your message are attached.",
    ...(report.sessionId ? ["", `Relay session: ${clean(report.sessionId, 80)}`] : []),
  ].join("\r\n");

  const perMessage = [`Reporting-MTA: dns; ${report.hostname}`, `Arrival-Date: ${rfc5322Date(report.arrived)}`];
  const perRecipient = report.refused.map((item) =>
    [
      `Final-Recipient: rfc822; ${clean(item.recipient, 320)}`,
      "Action: failed",
      `Status: ${statusOf(item.response)}`,
      `Remote-MTA: dns; ${report.upstream}`,
      `Diagnostic-Code: smtp; ${clean(item.response, 400)}`,
    ].join("\r\n"),
  );

  const headers =
    report.headers.length > 0
      ? report.headers.replace(/(\r\n)*$/, "\r\n")
      : "X-Smtpgate-Note: the message's headers were not read\r\n";
  // RFC 6532 headers may carry UTF-8; the part says so rather than mangling them.
  const eightBit = /[\u0080-\uffff]/.test(headers);

  return [
    `From: Mail Delivery System <MAILER-DAEMON@${report.hostname}>`,
    `To: <${clean(report.sender, 320)}>`,
    `Subject: Undelivered Mail Returned to Sender`,
    `Date: ${rfc5322Date(now)}`,
    `Message-ID: <${randomUUID()}@${report.hostname}>`,
    ...(messageId ? [`In-Reply-To: ${messageId}`, `References: ${messageId}`] : []),
    // RFC 3834: an automatic reply; vacation responders and the like must not answer it.
    "Auto-Submitted: auto-replied",
    "MIME-Version: 1.0",
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    "",
    "This is a MIME-encapsulated message.",
    "",
    `--${boundary}`,
    "Content-Type: text/plain; charset=us-ascii",
    "Content-Description: Notification",
    "",
    text,
    "",
    `--${boundary}`,
    "Content-Type: message/delivery-status",
    "Content-Description: Delivery report",
    "",
    perMessage.join("\r\n"),
    "",
    perRecipient.join("\r\n\r\n"),
    "",
    `--${boundary}`,
    "Content-Type: text/rfc822-headers",
    ...(eightBit ? ["Content-Transfer-Encoding: 8bit"] : []),
    "Content-Description: Undelivered Message Headers",
    "",
    headers,
    `--${boundary}--`,
    "",
  ].join("\r\n");
}

/** Printable ASCII only: addresses and replies come from the client and the upstream. */
function clean(value: string, max: number): string {
  // eslint-disable-next-line no-control-regex -- removing control characters is the point
  const printable = value.replace(/[\u0000-\u001f\u007f-\uffff]/g, "?");
  return printable.length > max ? `${printable.slice(0, max)}...` : printable;
}

/** RFC 5322 date-time in UTC, e.g. "Tue, 04 Nov 2025 10:00:00 +0000". */
function rfc5322Date(date: Date): string {
  return date.toUTCString().replace("GMT", "+0000");
}
