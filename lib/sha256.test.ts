import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { sha256 } from "./sha256.ts";

describe("sha256", () => {
  it("gives createHash's digest of a string (UTF-8) and of bytes, as bytes or text", () => {
    for (const data of ["token", "jörg", "", Buffer.from([0, 1, 2, 255])]) {
      const expected = createHash("sha256").update(data).digest();
      expect(sha256(data)).toEqual(expected);
      expect(sha256(data, "base64")).toBe(expected.toString("base64"));
      expect(sha256(data, "hex")).toBe(expected.toString("hex"));
    }
  });
});
