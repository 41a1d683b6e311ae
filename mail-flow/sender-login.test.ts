import { describe, expect, it } from "vitest";
import { ownsSender } from "./sender-login.ts";

const ALICE = ["alice@example.com", "Alice.Smith@Example.ORG", "alice+list@example.net"];

describe("ownsSender", () => {
  it("owns its addresses, case-insensitively in the local part and the domain", () => {
    expect(ownsSender(ALICE, "alice@example.com")).toBe(true);
    expect(ownsSender(ALICE, "ALICE@EXAMPLE.COM")).toBe(true);
    expect(ownsSender(ALICE, "alice.smith@example.org")).toBe(true);
  });

  it("owns a subaddress of an owned address, tag dropped at the first +", () => {
    expect(ownsSender(ALICE, "alice+tag@example.com")).toBe(true);
    expect(ownsSender(ALICE, "alice+tag+more@example.com")).toBe(true);
    expect(ownsSender(ALICE, "alice+@example.com")).toBe(true);
  });

  it("does not own the base of an owned subaddress, nor a + with nothing before it", () => {
    expect(ownsSender(ALICE, "alice+list@example.net")).toBe(true);
    expect(ownsSender(ALICE, "alice@example.net")).toBe(false);
    expect(ownsSender(["@example.com"], "+x@example.com")).toBe(false);
  });

  it("owns nothing else: other users, other domains, lookalikes, no addresses", () => {
    for (const sender of ["bob@example.com", "alice@example.co", "alice@sub.example.com", "alicex@example.com"])
      expect(ownsSender(ALICE, sender), sender).toBe(false);
    expect(ownsSender([], "alice@example.com")).toBe(false);
    expect(ownsSender(["alice@example.com"], "alice@example.com+x")).toBe(false);
  });
});
