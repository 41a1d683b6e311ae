/**
 * Which host of an LDAP server profile to try, in what order (docs/configuration.md):
 *
 * - `failover`: always start with the first host; when it fails, the next one is tried at once and becomes the
 *   active host; after `failbackAfterMs` the first host is tried first again.
 * - `loadbalance`: rotate the starting host per request; a host that failed is skipped for `hostDownForMs`
 *   (tried last, so a request still succeeds if it is the only one left).
 *
 * Pure state over a clock, so the order is unit-testable without sockets.
 */
export interface HostSelectorOptions {
  mode: "failover" | "loadbalance";
  failbackAfterMs: number;
  hostDownForMs: number;
  now?: () => number;
}

export class HostSelector {
  readonly #count: number;
  readonly #options: HostSelectorOptions;
  readonly #now: () => number;
  #active = 0;
  #activeSince = 0;
  #next = 0;
  readonly #downUntil: number[];
  /** How often the active host changed (a metric for operators). */
  failovers = 0;

  constructor(count: number, options: HostSelectorOptions) {
    this.#count = count;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#downUntil = new Array<number>(count).fill(0);
  }

  /** Host indices to try for one request, best first. Every host appears once. */
  order(): number[] {
    const all = [...Array(this.#count).keys()];
    if (this.#options.mode === "failover") {
      if (this.#active !== 0 && this.#now() - this.#activeSince >= this.#options.failbackAfterMs) this.#active = 0;
      return rotate(all, this.#active);
    }
    const start = this.#next;
    this.#next = (this.#next + 1) % this.#count;
    const rotated = rotate(all, start);
    const now = this.#now();
    const up = rotated.filter((index) => (this.#downUntil[index] ?? 0) <= now);
    return [...up, ...rotated.filter((index) => !up.includes(index))];
  }

  reportSuccess(index: number): void {
    this.#downUntil[index] = 0;
    if (this.#options.mode === "failover" && index !== this.#active) {
      this.#active = index;
      this.#activeSince = this.#now();
      this.failovers += 1;
    }
  }

  reportFailure(index: number): void {
    this.#downUntil[index] = this.#now() + this.#options.hostDownForMs;
  }

  /** The host failover mode currently starts with. */
  get active(): number {
    return this.#active;
  }
}

function rotate<T>(items: T[], start: number): T[] {
  return [...items.slice(start), ...items.slice(0, start)];
}
