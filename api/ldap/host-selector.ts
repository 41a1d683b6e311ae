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
  /** The hosts' order starting from each host. */
  readonly #rotations: readonly (readonly number[])[];
  /** How often the active host changed (a metric for operators). */
  failovers = 0;

  constructor(count: number, options: HostSelectorOptions) {
    this.#count = count;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#downUntil = new Array<number>(count).fill(0);
    const all = [...Array(count).keys()];
    this.#rotations = all.map((start) => Object.freeze([...all.slice(start), ...all.slice(0, start)]));
  }

  /**
   * Host indices to try for one request, best first. Every host appears once. The usual orders (failover's from
   * the active host, loadbalance's while no host is down) are built once and shared, read-only: no array per
   * request.
   */
  order(): readonly number[] {
    if (this.#options.mode === "failover") {
      if (this.#active !== 0 && this.#now() - this.#activeSince >= this.#options.failbackAfterMs) this.#active = 0;
      return this.#rotations[this.#active] as readonly number[];
    }
    const rotated = this.#rotations[this.#next] as readonly number[];
    this.#next = (this.#next + 1) % this.#count;
    const now = this.#now();
    if (!this.#anyDown(now)) return rotated;
    const up = rotated.filter((index) => (this.#downUntil[index] as number) <= now);
    return [...up, ...rotated.filter((index) => (this.#downUntil[index] as number) > now)];
  }

  #anyDown(now: number): boolean {
    for (let index = 0; index < this.#count; index += 1) if ((this.#downUntil[index] as number) > now) return true;
    return false;
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
