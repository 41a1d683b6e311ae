import { describe, expect, it } from "vitest";
import { decodeXtext, formatAction, PolicyRequestReader } from "./protocol.ts";

const REQUEST = "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.7\n\n";

describe("PolicyRequestReader", () => {
  it("reads a request split anywhere, and two in one chunk, in order", () => {
    const reader = new PolicyRequestReader();
    const bytes = Buffer.from(REQUEST + REQUEST.replace("192.0.2.7", "192.0.2.8"));
    const items = [...bytes].flatMap((byte) => reader.push(Buffer.from([byte])));
    expect(items.map((item) => item.ok && item.attributes.get("client_address"))).toEqual(["192.0.2.7", "192.0.2.8"]);
    expect(reader.midRequest).toBe(false);
  });

  it("keeps the first of a repeated attribute and ignores unknown ones", () => {
    const [item] = new PolicyRequestReader().push(
      Buffer.from("request=smtpd_access_policy\nsasl_username=alice\nsasl_username=bob\nfuture_attribute=x=y\n\n"),
    );
    expect(item).toMatchObject({ ok: true });
    if (!item?.ok) return;
    expect(item.attributes.get("sasl_username")).toBe("alice");
    expect(item.attributes.get("future_attribute")).toBe("x=y");
  });

  it.each([
    ["a NUL byte", "request=smtpd_access_policy\nsender=a\u0000b@example.com\n\n", "NUL byte in a request"],
    ["a line without =", "request=smtpd_access_policy\nnonsense\n\n", "a request line that is not name=value"],
    ["a line starting with =", "request=smtpd_access_policy\n=x\n\n", "a request line that is not name=value"],
    ["no request attribute", "sender=a@example.com\n\n", "a request without a request attribute"],
    ["another request type", "request=other\n\n", "not an smtpd_access_policy request"],
    ["an empty line alone", "\n", "an empty request"],
  ])("refuses %s, and reads nothing after it", (_, text, problem) => {
    const reader = new PolicyRequestReader();
    expect(reader.push(Buffer.from(text))).toEqual([{ ok: false, problem }]);
    expect(reader.push(Buffer.from(REQUEST))).toEqual([]);
  });

  it("refuses a request over the limit, in one line or in many, without waiting for its end", () => {
    expect(new PolicyRequestReader(1024).push(Buffer.from(`sender=${"a".repeat(2000)}`))).toEqual([
      { ok: false, problem: "request over 1024 bytes" },
    ]);
    const many = Array.from({ length: 100 }, (_, index) => `x${index}=${"b".repeat(20)}\n`).join("");
    expect(new PolicyRequestReader(1024).push(Buffer.from(`request=smtpd_access_policy\n${many}`))).toEqual([
      { ok: false, problem: "request over 1024 bytes" },
    ]);
  });

  it("drops a CR before the LF (a person typing), never keeping it in a value", () => {
    const [item] = new PolicyRequestReader().push(Buffer.from("request=smtpd_access_policy\r\nsender=a@b\r\n\r\n"));
    expect(item?.ok && item.attributes.get("sender")).toBe("a@b");
  });
});

describe("formatAction", () => {
  it("ends the answer with an empty line and keeps it one line", () => {
    expect(formatAction("DUNNO")).toBe("action=DUNNO\n\n");
    expect(formatAction("REJECT 5.7.1 not owned by user eve\n\naction=OK")).toBe(
      "action=REJECT 5.7.1 not owned by user eve??action=OK\n\n",
    );
  });
});

describe("decodeXtext", () => {
  it("decodes Postfix's +XX, UTF-8 included", () => {
    expect(decodeXtext("Wietse+20Venema")).toBe("Wietse Venema");
    expect(decodeXtext("J+C3+BCrgen")).toBe("Jürgen");
    expect(decodeXtext("a=b")).toBe("a=b");
  });

  it.each([["a+2"], ["a b"], ["+00alice"], ["+FF"], ["ä"]])("refuses %j", (text) => {
    expect(decodeXtext(text)).toBeNull();
  });
});
