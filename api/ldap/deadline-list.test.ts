import { setTimeout as delay } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { DeadlineList } from "./deadline-list.ts";

describe("DeadlineList", () => {
  it("expires each entry once its time has passed, oldest first, and never a cancelled one", async () => {
    const list = new DeadlineList(40);
    const expired: string[] = [];
    const first = list.add(() => expired.push("first"));
    await delay(15);
    const second = list.add(() => expired.push("second"));
    const cancelled = list.add(() => expired.push("cancelled"));
    list.add(() => expired.push("third"));
    expect(list.cancel(cancelled)).toBe(true);
    expect(list.cancel(cancelled)).toBe(false);
    expect(list.size).toBe(3);

    await delay(30);
    expect(expired).toEqual(["first"]);
    expect(first.pending).toBe(false);
    expect(list.cancel(first)).toBe(false);
    await delay(30);
    expect(expired).toEqual(["first", "second", "third"]);
    expect(second.pending).toBe(false);
    expect(list.size).toBe(0);
  });

  it("re-arms after the list ran empty", async () => {
    const list = new DeadlineList(10);
    const expired: number[] = [];
    list.add(() => expired.push(1));
    await delay(25);
    list.add(() => expired.push(2));
    await delay(25);
    expect(expired).toEqual([1, 2]);
  });
});
