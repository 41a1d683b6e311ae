/**
 * The Dovecot authentication protocol, version 1, server side: the words on the wire and nothing else
 * (Dovecot's "Dovecot Authentication Protocol" document; Postfix's src/xsasl/xsasl_dovecot_server.c is the client
 * we must satisfy). Lines end with LF; fields are TAB-separated and tab-escaped with \001 and a letter.
 */

/** The minor version we speak; a client checks only the major one. */
export const PROTOCOL_VERSION = { major: 1, minor: 2 } as const;

/** What the AUTH line may name, case-insensitively (Postfix passes the SMTP client's spelling on). */
export const MECHANISMS = ["PLAIN", "LOGIN"] as const;
export type Mechanism = (typeof MECHANISMS)[number];

const ESCAPE = "\u0001";
/** The letter after \001 and what it stands for; "n" and "l" both mean LF (versions of the document differ). */
const UNESCAPED: Record<string, string> = { "0": "\u0000", "1": ESCAPE, t: "\t", r: "\r", n: "\n", l: "\n" };
const ESCAPED: Record<string, string> = { "\u0000": "0", [ESCAPE]: "1", "\t": "t", "\r": "r", "\n": "n" };
// Built from strings: the control characters are the point here (no-control-regex guards against them by accident).
const ESCAPED_PAIR = new RegExp(`${ESCAPE}([\\s\\S]?)`, "g");
const TO_ESCAPE = new RegExp(`[${Object.keys(ESCAPED).join("")}]`, "g");

/** Dovecot's tab-unescaping: \001 plus a letter; an unknown letter stands for itself. */
export function tabUnescape(field: string): string {
  if (!field.includes(ESCAPE)) return field;
  return field.replace(ESCAPED_PAIR, (_match, letter: string) => UNESCAPED[letter] ?? letter);
}

/** Dovecot's tab-escaping, for the values we send (an identity or a reason). */
export function tabEscape(value: string): string {
  return value.replace(TO_ESCAPE, (char) => `${ESCAPE}${ESCAPED[char] ?? ""}`);
}

/** The server's half of the handshake, sent as soon as a client connects. */
export function handshake(facts: { pid: number; connectionId: number; cookie: string }): string {
  return [
    `VERSION\t${PROTOCOL_VERSION.major}\t${PROTOCOL_VERSION.minor}`,
    // Postfix takes a handshake without MECH lines before SPID for the wrong (master) socket.
    ...MECHANISMS.map((mechanism) => `MECH\t${mechanism}\tplaintext`),
    `SPID\t${facts.pid}`,
    `CUID\t${facts.connectionId}`,
    `COOKIE\t${facts.cookie}`,
    "DONE",
    "",
  ].join("\n");
}

/** A client line, split and unescaped; null when it cannot be one (a raw NUL, or no command). */
export function splitLine(line: string): { command: string; args: string[] } | null {
  if (line.includes("\u0000")) return null;
  const [command = "", ...args] = line.split("\t");
  if (!/^[A-Z]+$/.test(command)) return null;
  return { command, args: args.map(tabUnescape) };
}

/** A request id: an unsigned decimal number, as Dovecot and Postfix write it. */
export function parseRequestId(text: string | undefined): number | null {
  if (text === undefined || !/^[0-9]{1,10}$/.test(text)) return null;
  const id = Number(text);
  return id <= 0xffffffff ? id : null;
}

export interface AuthCommand {
  id: number;
  /** As the client spelled it; `mechanism` is the one we offer, or null. */
  mechanismName: string;
  mechanism: Mechanism | null;
  service: string | undefined;
  /** `secured`: the SMTP session is TLS-protected (or local, for Exim). */
  secured: boolean;
  clientIp: string | undefined;
  /** The initial response (base64) when the client sent one; "" for an empty one (see parseAuth). */
  initialResponse: string | undefined;
}

/**
 * `AUTH <id> <mechanism> [params]`. Optional parameters are `name=value` or a bare flag; unknown ones are ignored,
 * as the protocol document says (nologin, lip, lport, rport, valid-client-cert, no-penalty, ...).
 * `clientMinorVersion` is the minor version of the client's VERSION line: before 2, a `resp=` with nothing after it
 * means no initial response (Exim, which speaks 1.0, sends one on every AUTH, also after a bare `AUTH LOGIN`),
 * as Dovecot reads it; from 2 on it is an empty one. `resp==` is an empty one in every version.
 */
export function parseAuth(args: readonly string[], clientMinorVersion: number): AuthCommand | { malformed: string } {
  const [idText, mechanismName, ...params] = args;
  const id = parseRequestId(idText);
  if (id === null) return { malformed: "AUTH without a numeric request id" };
  if (mechanismName === undefined || mechanismName === "") return { malformed: "AUTH without a mechanism" };
  const upper = mechanismName.toUpperCase();
  const command: AuthCommand = {
    id,
    mechanismName,
    mechanism: MECHANISMS.find((mechanism) => mechanism === upper) ?? null,
    service: undefined,
    secured: false,
    clientIp: undefined,
    initialResponse: undefined,
  };
  for (const param of params) {
    const equals = param.indexOf("=");
    const name = equals < 0 ? param : param.slice(0, equals);
    const value = equals < 0 ? "" : param.slice(equals + 1);
    if (name === "service") command.service = value;
    else if (name === "secured") command.secured = true;
    else if (name === "rip") command.clientIp = value;
    else if (name === "resp") command.initialResponse = value === "" && clientMinorVersion < 2 ? undefined : value;
  }
  return command;
}

/** `OK <id> user=<identity>`: Postfix takes `user` as the SASL login of the session. */
export function okReply(id: number, identity: string): string {
  return `OK\t${id}\tuser=${tabEscape(identity)}\n`;
}

/** `CONT <id> <base64 challenge>`: the next step of a mechanism (may be empty). */
export function contReply(id: number, challenge: string): string {
  return `CONT\t${id}\t${Buffer.from(challenge, "utf8").toString("base64")}\n`;
}

/** `FAIL <id> [user=] reason=`: Postfix answers `535 5.7.8 Error: authentication failed: <reason>`. */
export function failReply(id: number, reason: string, user?: string): string {
  const userField = user === undefined || user === "" ? "" : `\tuser=${tabEscape(user)}`;
  return `FAIL\t${id}${userField}\treason=${tabEscape(reason)}\n`;
}
