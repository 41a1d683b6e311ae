import { describe, expect, it } from "vitest";
import { bearerToken, createTokenChecker } from "./api-tokens.ts";

describe("API tokens", () => {
  it("accepts each configured token (rotation) and nothing else", async () => {
    const checker = await createTokenChecker(["current-token-123", "next-token-456"]);
    expect(await checker.check("current-token-123")).toBe(true);
    expect(await checker.check("next-token-456")).toBe(true);
    expect(await checker.check("current-token-12")).toBe(false);
    expect(await checker.check("")).toBe(false);
  });

  it("refuses to start without a token", async () => {
    await expect(createTokenChecker([])).rejects.toThrow(/at least one/);
  });

  it("reads only well-formed Bearer headers", () => {
    expect(bearerToken("Bearer abc.def")).toBe("abc.def");
    expect(bearerToken("bearer abc")).toBe("abc");
    expect(bearerToken("Basic abc")).toBeNull();
    expect(bearerToken("Bearer ")).toBeNull();
    expect(bearerToken("Bearer a b")).toBeNull();
    expect(bearerToken(undefined)).toBeNull();
  });
});
