/**
 * Counts the bytes of DATA and stops passing them on past the policy's limit (the upstream never gets it all).
 * Keeps the message's header section (up to MAX_HEADER_BYTES) for a delivery status notification. What it passes
 * on starts with `prefix` (the relay's trace header), which the limit does not count: it is the client's bytes.
 */
import { Transform, type TransformCallback } from "node:stream";

/** Most of a message's header section kept for a delivery status notification (the body never is). */
const MAX_HEADER_BYTES = 64 * 1024;

export class ByteLimit extends Transform {
  bytes = 0;
  exceeded = false;
  readonly #limit: number;
  #head: Buffer[] = [];
  #headDone = false;

  constructor(limit: number, prefix = "") {
    super();
    this.#limit = limit;
    if (prefix !== "") this.push(prefix);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.#limit) {
      this.exceeded = true;
      done(new Error("message size limit exceeded"));
      return;
    }
    if (!this.#headDone) {
      this.#head.push(chunk);
      this.#settleHead();
    }
    done(null, chunk);
  }

  /** The header section as read so far: complete lines up to the blank line, CRLF line ends, UTF-8 decoded. */
  get headers(): string {
    const text = Buffer.concat(this.#head).toString("latin1");
    const blank = /(?:^|\n)\r?\n/.exec(text);
    const section = blank
      ? text.slice(0, blank.index + (blank[0].startsWith("\n") ? 1 : 0))
      : text.slice(0, text.lastIndexOf("\n") + 1);
    return Buffer.from(section, "latin1")
      .toString("utf8")
      .replace(/\r\n|\r|\n/g, "\r\n");
  }

  /** Joins what was kept and stops keeping more once the blank line or MAX_HEADER_BYTES is reached. */
  #settleHead(): void {
    if (this.#headDone) return;
    let joined = Buffer.concat(this.#head);
    const blank = /(?:^|\n)\r?\n/.exec(joined.toString("latin1"));
    if (blank) {
      this.#headDone = true;
      joined = joined.subarray(0, blank.index + blank[0].length);
    } else if (joined.length >= MAX_HEADER_BYTES) {
      this.#headDone = true;
      joined = joined.subarray(0, MAX_HEADER_BYTES);
    }
    this.#head = [joined];
  }
}
