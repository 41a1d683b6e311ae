/**
 * The Postfix policy delegation protocol (SMTPD_POLICY_README), the wire part: a request is `name=value` lines,
 * LF-ended, and an empty line; the answer is `action=...` and an empty line. Many requests on one connection, one
 * after the other (Postfix waits for each answer, but a client may pipeline: answers go out in order).
 *
 *   const reader = new PolicyRequestReader();
 *   for (const item of reader.push(chunk)) item.ok ? handle(item.attributes) : closeWith(item.problem);
 *   socket.write(formatAction("DUNNO"));
 *
 * Malformed input is a value: a NUL byte, a line without `=`, a request over the size limit or with no `request`
 * attribute. The caller logs it and closes; nothing here throws on input.
 */

/** Postfix's requests are ~1 KiB; 16 KiB leaves room for long names and certificate subjects, no more. */
export const MAX_REQUEST_BYTES = 16 * 1024;

const LF = 0x0a;
const NUL = 0x00;

export type PolicyAttributes = ReadonlyMap<string, string>;

export type ReadItem = { ok: true; attributes: PolicyAttributes } | { ok: false; problem: string };

export class PolicyRequestReader {
  readonly #maxRequestBytes: number;
  /** The bytes of the request being read, not yet split. */
  #pending: Buffer = Buffer.alloc(0);
  #attributes = new Map<string, string>();
  /** Bytes of the current request already parsed into attributes. */
  #requestBytes = 0;
  #failed = false;

  constructor(maxRequestBytes = MAX_REQUEST_BYTES) {
    this.#maxRequestBytes = maxRequestBytes;
  }

  /** Whether part of a request has arrived (its deadline runs). */
  get midRequest(): boolean {
    return this.#pending.length > 0 || this.#attributes.size > 0;
  }

  /** The requests this chunk completes, in order; after a problem, nothing more (the connection is done). */
  push(chunk: Buffer): ReadItem[] {
    if (this.#failed) return [];
    const items: ReadItem[] = [];
    let data = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    for (;;) {
      const end = data.indexOf(LF);
      if (end < 0) break;
      const line = data.subarray(0, end);
      data = data.subarray(end + 1);
      const item = this.#line(line);
      if (item) {
        items.push(item);
        if (!item.ok) return this.#fail(items);
      }
    }
    if (this.#requestBytes + data.length > this.#maxRequestBytes)
      return this.#fail([...items, { ok: false, problem: `request over ${this.#maxRequestBytes} bytes` }]);
    this.#pending = Buffer.from(data);
    return items;
  }

  #line(raw: Buffer): ReadItem | null {
    this.#requestBytes += raw.length + 1;
    if (this.#requestBytes > this.#maxRequestBytes)
      return { ok: false, problem: `request over ${this.#maxRequestBytes} bytes` };
    if (raw.includes(NUL)) return { ok: false, problem: "NUL byte in a request" };
    // Postfix ends lines with LF alone; a CR before it (a person with telnet) is dropped, never kept in a value.
    const line = raw.toString("utf8").replace(/\r$/, "");
    if (line === "") return this.#endOfRequest();
    const equals = line.indexOf("=");
    if (equals <= 0) return { ok: false, problem: "a request line that is not name=value" };
    const name = line.slice(0, equals);
    // The README allows keeping the first or the last of a repeated attribute: the first is kept.
    if (!this.#attributes.has(name)) this.#attributes.set(name, line.slice(equals + 1));
    return null;
  }

  #endOfRequest(): ReadItem | null {
    const attributes = this.#attributes;
    this.#attributes = new Map();
    this.#requestBytes = 0;
    if (attributes.size === 0) return { ok: false, problem: "an empty request" };
    const request = attributes.get("request");
    if (request !== "smtpd_access_policy")
      return {
        ok: false,
        problem: request === undefined ? "a request without a request attribute" : "not an smtpd_access_policy request",
      };
    return { ok: true, attributes };
  }

  #fail(items: ReadItem[]): ReadItem[] {
    this.#failed = true;
    this.#pending = Buffer.alloc(0);
    this.#attributes = new Map();
    return items;
  }
}

// eslint-disable-next-line no-control-regex -- a control character in an answer would end it early
const CONTROL = /[\u0000-\u001f\u007f]/g;

/** The answer to one request. Control characters become `?`: an answer is one line, whatever a value held. */
export function formatAction(action: string): string {
  return `action=${action.replace(CONTROL, "?")}\n\n`;
}

/** RFC 3461 xtext: printable ASCII but `+`, or `+XX` (Postfix leaves `=` as it is). */
const XTEXT = /^(?:[\x21-\x2a\x2c-\x7e]|\+[0-9A-Fa-f]{2})*$/;
// eslint-disable-next-line no-control-regex -- a decoded name with control characters is refused
const DECODED_CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * RFC 3461 xtext, as Postfix encodes `ccert_subject` and `ccert_issuer`: `+XX` is the byte 0xXX. Null when the
 * text is not xtext, or does not decode to UTF-8 without control characters (Postfix 2.6+ sends no other).
 */
export function decodeXtext(text: string): string | null {
  if (!XTEXT.test(text)) return null;
  const bytes = Buffer.from(
    text.replace(/\+([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))),
    "latin1",
  );
  const decoded = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  try {
    const value = decoded.decode(bytes);
    return DECODED_CONTROL.test(value) ? null : value;
  } catch {
    return null;
  }
}
