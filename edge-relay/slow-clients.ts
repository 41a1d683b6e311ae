/**
 * Slow-client deadlines: an smtp-server behaviour the relay adds, per connection (docs/edge-relay.md; Postfix's
 * smtpd_per_request_deadline and smtpd_min_data_rate). smtp-server has only an idle timeout, which every byte
 * received restarts: a client that sends one byte a second on a command line or inside DATA keeps its connection
 * for ever, and a few of them fill an address's connection limit. SessionDeadlines adds three limits:
 *
 * - a command line must be complete within `commandDeadlineMs` of its first byte;
 * - DATA must end within `dataDeadlineMs` of its start, a limit that every `minDataBytesPerSecond` bytes received
 *   push back by a second (Postfix's rule: a client that keeps up that rate is never cut; 0: a fixed deadline);
 * - a session lasts at most `maxSessionMs`; a client waiting for a reply or inside DATA (which has its own
 *   deadline) gets that reply or finishes that message first.
 *
 * Past one, `onExpired` is called once (the adapter answers `421 4.4.2` and closes). Time the relay itself holds
 * the client up does not count: while smtp-server stops reading because its buffer is full (a hook or the upstream
 * is slow), the command and DATA clocks stand still (`pause`/`resume`).
 */
import type { SMTPServerSession } from "smtp-server";

export interface SlowClientLimits {
  readonly commandDeadlineMs: number;
  readonly dataDeadlineMs: number;
  readonly minDataBytesPerSecond: number;
  readonly maxSessionMs: number;
}

export type DeadlineName = "command" | "data" | "session";

/** The limits a deadline enforced, for its log line: `command line deadline (30000 ms)`. */
export const DEADLINE_WORDS: Readonly<Record<DeadlineName, string>> = {
  command: "command line deadline",
  data: "DATA deadline",
  session: "session deadline",
};

const LF = 0x0a;
/** How often an expired session deadline looks again whether the client still waits for a reply. */
const SESSION_RECHECK_MS = 100;

export interface DeadlineHooks {
  /** A deadline passed: answer 421 4.4.2 and close. Called at most once. */
  onExpired(deadline: DeadlineName): void;
  /** The client waits for the relay (a hook or the upstream has not answered yet): the session may not end now. */
  isWaitingForServer(): boolean;
}

/** The deadlines of one session; fed by the adapter with every chunk the client sends and the DATA boundaries. */
export class SessionDeadlines {
  readonly #limits: SlowClientLimits;
  readonly #hooks: DeadlineHooks;
  readonly #line: MovingDeadline;
  readonly #data: MovingDeadline;
  #session: NodeJS.Timeout | undefined;
  #inData = false;
  #expired = false;

  constructor(limits: SlowClientLimits, hooks: DeadlineHooks) {
    this.#limits = limits;
    this.#hooks = hooks;
    this.#line = new MovingDeadline(() => this.#expire("command"));
    this.#data = new MovingDeadline(() => this.#expire("data"));
    this.#session = setTimeout(() => this.#sessionOver(), limits.maxSessionMs).unref();
  }

  /** A chunk from the client, as it arrives (before smtp-server parses it). */
  arrived(chunk: Buffer): void {
    if (this.#inData) {
      const rate = this.#limits.minDataBytesPerSecond;
      if (rate > 0) this.#data.extend((chunk.length * 1000) / rate);
      return;
    }
    const lastLf = chunk.lastIndexOf(LF);
    // Bytes after the last LF begin a line now; a chunk without one goes on with the line already timed, if any.
    if (lastLf === -1) {
      if (!this.#line.active) this.#line.start(this.#limits.commandDeadlineMs);
    } else if (lastLf === chunk.length - 1) this.#line.stop();
    else this.#line.start(this.#limits.commandDeadlineMs);
  }

  /** smtp-server went into DATA mode (it sends 354 next). */
  dataStarted(): void {
    this.#line.stop();
    this.#inData = true;
    this.#data.start(this.#limits.dataDeadlineMs);
  }

  /** The final dot arrived; `rest` is what came after it in the same chunk (pipelined commands). */
  dataEnded(rest: Buffer): void {
    this.#inData = false;
    this.#data.stop();
    if (rest.length > 0) this.arrived(rest);
  }

  /** smtp-server stopped reading (its buffer is full): the client cannot send, its clocks stand still. */
  pause(): void {
    this.#line.pause();
    this.#data.pause();
  }

  resume(): void {
    this.#line.resume();
    this.#data.resume();
  }

  /** The connection closed: no timer is left behind. */
  stop(): void {
    this.#line.stop();
    this.#data.stop();
    clearTimeout(this.#session);
  }

  #sessionOver(): void {
    if (this.#inData || this.#hooks.isWaitingForServer())
      this.#session = setTimeout(() => this.#sessionOver(), SESSION_RECHECK_MS).unref();
    else this.#expire("session");
  }

  #expire(deadline: DeadlineName): void {
    if (this.#expired) return;
    this.#expired = true;
    this.stop();
    this.#hooks.onExpired(deadline);
  }
}

/**
 * A deadline whose due time moves: pushed back (DATA bytes) and frozen while paused. Its one timer is not re-armed
 * on every extension: when it fires early it looks at the due time and sleeps again.
 */
class MovingDeadline {
  readonly #onDue: () => void;
  #dueAt = 0;
  #pausedAt: number | null = null;
  #timer: NodeJS.Timeout | undefined;
  active = false;

  constructor(onDue: () => void) {
    this.#onDue = onDue;
  }

  start(ms: number): void {
    this.#dueAt = (this.#pausedAt ?? Date.now()) + ms;
    this.active = true;
    this.#arm();
  }

  extend(ms: number): void {
    this.#dueAt += ms;
  }

  stop(): void {
    this.active = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  pause(): void {
    this.#pausedAt ??= Date.now();
  }

  resume(): void {
    if (this.#pausedAt === null) return;
    this.#dueAt += Date.now() - this.#pausedAt;
    this.#pausedAt = null;
    if (this.active) this.#arm();
  }

  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#check(), Math.max(0, this.#dueAt - Date.now())).unref();
  }

  #check(): void {
    this.#timer = undefined;
    // Paused: resume() arms it again, with the paused time added.
    if (!this.active || this.#pausedAt !== null) return;
    if (Date.now() < this.#dueAt) return this.#arm();
    this.active = false;
    this.#onDue();
  }
}

/** What the adapter needs from the relay to run the deadlines of a session. */
export interface SlowClientPolicy {
  /** Read when a session begins: a reload changes the limits of new sessions. */
  limits(): SlowClientLimits;
  /** A session's deadline passed (for its log line and metric); the adapter then answers 421 4.4.2 and closes. */
  expired(session: SMTPServerSession, deadline: DeadlineName, limits: SlowClientLimits): void;
}
