/**
 * XCLIENT (Postfix's XCLIENT_README): the relay tells the upstream who the client really is, so that the
 * upstream's logs, per-client limits and restrictions concern the client and its login, not the relay.
 *
 * nodemailer's SMTP client has no XCLIENT command, but it runs custom AUTH handlers with a `sendCommand` into its
 * own dialogue, after the greeting, EHLO and STARTTLS and before MAIL FROM: "logging in" with the method XCLIENT
 * runs announceClient(). nodemailer frames every reply; this module only reads the EHLO keyword line.
 *
 * One upstream connection per message, never a pooled one: XCLIENT attributes last until the end of the upstream
 * session, and Postfix matches smtpd_authorized_xclient_hosts again against the address it was given, so a
 * second XCLIENT on the same connection is refused (Postfix 3.7.11: `550 5.7.0 Error: insufficient
 * authorization`). A pooled connection would carry one client's identity into another client's message.
 */
import { isIPv4, isIPv6 } from "node:net";
import type { SMTPConnectionCustomAuthContext, SMTPConnectionCustomAuthResponse } from "nodemailer/lib/smtp-connection";

export const XCLIENT_MODES = ["off", "auto", "required"] as const;
/** off: never (the upstream sees the relay); auto: when the upstream offers it; required: or 451, not relayed. */
export type XclientMode = (typeof XCLIENT_MODES)[number];

/** What XCLIENT_README calls an unknown value. */
const UNAVAILABLE = "[UNAVAILABLE]";
/** Postfix refuses a longer (xtext-encoded) attribute value: `501 5.5.4 Error: attribute value too long`. */
const MAX_VALUE_CHARS = 255;
/** RFC 5321 §4.5.3.1.4: 512 octets with the CRLF. */
const MAX_COMMAND_CHARS = 510;

/** The client as the relay saw it, for one message. */
export interface XclientClient {
  address: string;
  port: number;
  /** The client's EHLO/HELO argument; null when it sent none. */
  helo: string | null;
  /** The identity the relay authenticated (AUTH or certificate); null: not authenticated, no LOGIN is sent. */
  login: string | null;
}

/** Why the relay could not hand the message over as the client's: the message is not relayed (451). */
export class XclientFailure extends Error {
  readonly reason: "not-offered" | "refused" | "too-long";
  /** What went wrong, in the relay's words (nodemailer appends the last reply to `message`). */
  readonly summary: string;
  /** The upstream's reply to the step that failed, if there was one. */
  readonly reply: string | undefined;

  constructor(reason: XclientFailure["reason"], message: string, reply?: string) {
    super(message);
    this.name = "XclientFailure";
    this.reason = reason;
    this.summary = message;
    this.reply = reply;
  }
}

/** RFC 1891 §5 xtext: printable ASCII but "+" and "=" as itself, every other byte (UTF-8) as "+XX". */
export function xtext(value: string): string {
  let encoded = "";
  for (const byte of Buffer.from(value, "utf8")) {
    const literal = byte >= 0x21 && byte <= 0x7e && byte !== 0x2b && byte !== 0x3d;
    encoded += literal ? String.fromCharCode(byte) : `+${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return encoded;
}

/** ADDR: IPv4 as it is (also when Node reports it IPv4-mapped), IPv6 after "IPV6:", else [UNAVAILABLE]. */
export function xclientAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped && isIPv4(mapped)) return mapped;
  if (isIPv4(address)) return address;
  if (isIPv6(address)) return `IPV6:${address}`;
  return UNAVAILABLE;
}

/** The XCLIENT attribute names the upstream's EHLO reply lists, upper case; null when it offers no XCLIENT. */
export function offeredAttributes(ehloReply: string): Set<string> | null {
  for (const line of ehloReply.split(/\r?\n/)) {
    const [keyword, ...names] = line
      .replace(/^\d{3}[ -]/, "")
      .trim()
      .split(/\s+/);
    if (keyword?.toUpperCase() === "XCLIENT") return new Set(names.map((name) => name.toUpperCase()));
  }
  return null;
}

/** nodemailer reads the code of a one-line reply only ("250-..." gives status 0). */
function replyCode(reply: SMTPConnectionCustomAuthResponse): number {
  return reply.status || Number(/^\d{3}/.exec(reply.response)?.[0] ?? 0);
}

/** A HELO name the relay can say in its own EHLO after XCLIENT: one printable ASCII word. */
function usableHelo(helo: string | null): string | null {
  return helo !== null && /^[\x21-\x7e]{1,255}$/.test(helo) ? helo : null;
}

/**
 * One XCLIENT command with the attributes the upstream offers, in a single line: after an XCLIENT with ADDR,
 * Postfix authorises the next XCLIENT by the new address, so the attributes cannot be split over two commands.
 * NAME is [UNAVAILABLE]: the relay does no reverse lookup, and an unconfirmed name would let a client pick the
 * hostname the upstream's restrictions see. A HELO too long to fit is sent as [UNAVAILABLE]; a login that
 * cannot be sent whole is a failure, never a message without it.
 */
export function xclientCommand(client: XclientClient, offered: ReadonlySet<string>): string {
  const login = client.login === null ? null : xtext(client.login);
  if (login !== null && login.length > MAX_VALUE_CHARS && offered.has("LOGIN")) {
    throw new XclientFailure("too-long", `the login is too long for XCLIENT (${login.length} characters encoded)`);
  }
  const helo = usableHelo(client.helo);
  const build = (heloValue: string): string => {
    const attributes: [string, string | null][] = [
      ["NAME", UNAVAILABLE],
      ["ADDR", xclientAddress(client.address)],
      ["PORT", client.port > 0 ? String(client.port) : UNAVAILABLE],
      ["HELO", heloValue],
      ["PROTO", "ESMTP"],
      ["LOGIN", login],
    ];
    const sent = attributes.filter(([name, value]) => value !== null && offered.has(name));
    return ["XCLIENT", ...sent.map(([name, value]) => `${name}=${value}`)].join(" ");
  };
  const encodedHelo = helo === null ? UNAVAILABLE : xtext(helo);
  const command = build(encodedHelo.length <= MAX_VALUE_CHARS ? encodedHelo : UNAVAILABLE);
  if (command.length <= MAX_COMMAND_CHARS) return command;
  const shorter = build(UNAVAILABLE);
  if (shorter.length <= MAX_COMMAND_CHARS) return shorter;
  throw new XclientFailure("too-long", `the XCLIENT command would be ${shorter.length} characters long`);
}

export interface AnnounceOptions {
  mode: Exclude<XclientMode, "off">;
  client: XclientClient;
  /** The relay's own EHLO name. */
  relayName: string;
  /** Under `auto`, when the upstream does not offer XCLIENT and the message goes on as the relay's. */
  onNotOffered(): void;
}

/**
 * The custom AUTH handler that announces the client: EHLO once more to read the keywords (nodemailer keeps only
 * those it knows), XCLIENT, then EHLO as the client (the upstream is back at its greeting, XCLIENT_README, and
 * takes the HELO name from that EHLO). Rejects with an XclientFailure.
 */
export function announceClient(options: AnnounceOptions) {
  return async function announceXclient(connection: SMTPConnectionCustomAuthContext): Promise<void> {
    const ehlo = await connection.sendCommand(`EHLO ${options.relayName}`);
    if (replyCode(ehlo) !== 250) throw new XclientFailure("refused", "the upstream refused EHLO", ehlo.response);
    const offered = offeredAttributes(ehlo.response);
    if (offered === null) {
      if (options.mode === "required") throw new XclientFailure("not-offered", "the upstream does not offer XCLIENT");
      options.onNotOffered();
      return;
    }
    const reply = await connection.sendCommand(xclientCommand(options.client, offered));
    if (replyCode(reply) !== 220) throw new XclientFailure("refused", "the upstream refused XCLIENT", reply.response);
    const hello = await connection.sendCommand(`EHLO ${usableHelo(options.client.helo) ?? options.relayName}`);
    if (replyCode(hello) !== 250) {
      throw new XclientFailure("refused", "the upstream refused EHLO after XCLIENT", hello.response);
    }
  };
}
