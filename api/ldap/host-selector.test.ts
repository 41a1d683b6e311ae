import { describe, expect, it } from "vitest";
import { HostSelector } from "./host-selector.ts";

function clock(start = 0) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe("HostSelector failover", () => {
  it("starts with the first host", () => {
    const selector = new HostSelector(3, { mode: "failover", failbackAfterMs: 1000, hostDownForMs: 1000 });
    expect(selector.order()).toEqual([0, 1, 2]);
  });

  it("stays on the host that answered after the first failed, then returns to the first after the period", () => {
    const time = clock();
    const selector = new HostSelector(3, {
      mode: "failover",
      failbackAfterMs: 60_000,
      hostDownForMs: 1000,
      now: time.now,
    });
    selector.reportFailure(0);
    selector.reportSuccess(1);
    expect(selector.failovers).toBe(1);
    expect(selector.order()).toEqual([1, 2, 0]);
    time.advance(59_999);
    expect(selector.order()).toEqual([1, 2, 0]);
    time.advance(1);
    expect(selector.order()).toEqual([0, 1, 2]);
  });
});

describe("HostSelector loadbalance", () => {
  it("rotates the first host", () => {
    const selector = new HostSelector(3, { mode: "loadbalance", failbackAfterMs: 1000, hostDownForMs: 1000 });
    expect([selector.order()[0], selector.order()[0], selector.order()[0], selector.order()[0]]).toEqual([0, 1, 2, 0]);
  });

  it("tries a failed host last until it has been down for the period", () => {
    const time = clock();
    const selector = new HostSelector(2, {
      mode: "loadbalance",
      failbackAfterMs: 1000,
      hostDownForMs: 5000,
      now: time.now,
    });
    selector.reportFailure(0);
    expect(selector.order()).toEqual([1, 0]);
    expect(selector.order()).toEqual([1, 0]);
    time.advance(5000);
    expect(selector.order()).toEqual([0, 1]);
  });
});
