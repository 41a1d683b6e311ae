/**
 * The pending deadlines of one connection pool, driven by one timer.
 *
 * Every operation of a pool gets the same time (its operationTimeoutMs), so deadlines are added in the order
 * they fall due: the list is a queue, oldest first, and the one timer only ever waits for its head. An operation
 * that finishes in time unlinks its entry (no timer created or cleared, unlike a setTimeout and a Promise.race
 * per operation); the timer, once armed, wakes when the head falls due and expires every entry that is due.
 */

export interface Deadline {
  readonly at: number;
  onExpire: () => void;
  previous: Deadline | null;
  next: Deadline | null;
  /** False once expired or cancelled. */
  pending: boolean;
}

export class DeadlineList {
  readonly #ms: number;
  readonly #now: () => number;
  #head: Deadline | null = null;
  #tail: Deadline | null = null;
  #timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires. */
  #timerAt = 0;

  constructor(ms: number, now: () => number = performance.now.bind(performance)) {
    this.#ms = ms;
    this.#now = now;
  }

  /** Calls `onExpire` `ms` from now unless cancelled first. */
  add(onExpire: () => void): Deadline {
    const deadline: Deadline = {
      at: this.#now() + this.#ms,
      onExpire,
      previous: this.#tail,
      next: null,
      pending: true,
    };
    if (this.#tail) this.#tail.next = deadline;
    else this.#head = deadline;
    this.#tail = deadline;
    // An armed timer falls due at or before this entry (it waits for an older one); it re-arms when it fires.
    if (this.#timer === undefined) this.#arm(deadline.at);
    return deadline;
  }

  /** Takes the deadline off the list; true if it was still pending (it had not expired). */
  cancel(deadline: Deadline): boolean {
    if (!deadline.pending) return false;
    this.#unlink(deadline);
    return true;
  }

  get size(): number {
    let count = 0;
    for (let at = this.#head; at; at = at.next) count += 1;
    return count;
  }

  #unlink(deadline: Deadline): void {
    deadline.pending = false;
    if (deadline.previous) deadline.previous.next = deadline.next;
    else this.#head = deadline.next;
    if (deadline.next) deadline.next.previous = deadline.previous;
    else this.#tail = deadline.previous;
    deadline.previous = deadline.next = null;
  }

  #arm(at: number): void {
    this.#timerAt = at;
    this.#timer = setTimeout(this.#fire, Math.max(0, at - this.#now()));
    // Pending LDAP deadlines alone must not keep a process alive that has nothing else to do.
    this.#timer.unref();
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    // Timers may fire a little early against performance.now(); what is due by the timer's own time is due.
    const now = Math.max(this.#now(), this.#timerAt);
    while (this.#head && this.#head.at <= now) {
      const due = this.#head;
      this.#unlink(due);
      due.onExpire();
    }
    if (this.#head && this.#timer === undefined) this.#arm(this.#head.at);
  };
}
