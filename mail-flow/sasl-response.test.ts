import { describe, expect, it } from "vitest";
import { decodeInitialResponse, decodeSaslResponse } from "./sasl-response.ts";

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

describe("decodeSaslResponse", () => {
  it("decodes canonical base64 of UTF-8, and an empty line as empty", () => {
    expect(decodeSaslResponse(b64("\0alice\0secret"))).toBe("\0alice\0secret");
    expect(decodeSaslResponse(b64("jürgen"))).toBe("jürgen");
    expect(decodeSaslResponse("")).toBe("");
  });

  it("refuses what a lenient decoder would accept: junk, trailing junk, missing padding, stray bits, spaces", () => {
    for (const response of ["@@@@", `${b64("\0alice\0secret")}!!!`, "YWxpY2U", "YWxpY2V=", "YWxp Y2U=", "=", "*"])
      expect(decodeSaslResponse(response), response).toBeNull();
  });

  it("refuses bytes that are not UTF-8", () => {
    expect(decodeSaslResponse(Buffer.from([0x61, 0xff, 0x62]).toString("base64"))).toBeNull();
  });
});

describe("decodeInitialResponse", () => {
  it("takes = as the empty initial response (RFC 4954 §4), else decodes strictly", () => {
    expect(decodeInitialResponse("=")).toBe("");
    expect(decodeInitialResponse(b64("alice"))).toBe("alice");
    expect(decodeInitialResponse("@@@@")).toBeNull();
  });
});
