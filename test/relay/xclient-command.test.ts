// The XCLIENT command the relay builds (edge-relay/xclient.ts): xtext, addresses, the attributes the upstream
// offers, the 512-octet line and Postfix's 255-character values; and the limit on upstream connections
// (edge-relay/upstream-connections.ts).
import { describe, expect, it } from "vitest";
import { Slots } from "../../edge-relay/upstream-connections.ts";
import {
  offeredAttributes,
  xclientAddress,
  xclientCommand,
  XclientFailure,
  xtext,
  type XclientClient,
} from "../../edge-relay/xclient.ts";

/** Postfix 3.7.11's EHLO reply to an authorised client, as nodemailer hands it over (lines joined by LF). */
const POSTFIX_EHLO = [
  "250-postfix.test",
  "250-PIPELINING",
  "250-SIZE 10240000",
  "250-XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT",
  "250-ENHANCEDSTATUSCODES",
  "250 CHUNKING",
].join("\n");
const ALL = offeredAttributes(POSTFIX_EHLO) ?? new Set<string>();
const ALICE: XclientClient = { address: "192.0.2.7", port: 50123, helo: "laptop.example", login: "alice" };

describe("xtext (RFC 1891)", () => {
  it("keeps printable ASCII and encodes space, '+', '=', controls and UTF-8 bytes as +XX", () => {
    expect(xtext("alice@example.com")).toBe("alice@example.com");
    expect(xtext("a b+c=d\r\n")).toBe("a+20b+2Bc+3Dd+0D+0A");
    expect(xtext("jürgen")).toBe("j+C3+BCrgen");
  });
});

describe("xclientAddress", () => {
  it("gives IPv4 as it is, IPv4-mapped IPv6 as IPv4, IPv6 after IPV6: and anything else as [UNAVAILABLE]", () => {
    expect(xclientAddress("192.0.2.7")).toBe("192.0.2.7");
    expect(xclientAddress("::ffff:192.0.2.7")).toBe("192.0.2.7");
    expect(xclientAddress("2001:db8::1")).toBe("IPV6:2001:db8::1");
    expect(xclientAddress("not an address")).toBe("[UNAVAILABLE]");
  });
});

describe("offeredAttributes", () => {
  it("reads the attribute names from the XCLIENT keyword line, and null without one", () => {
    expect([...ALL]).toEqual([
      "NAME",
      "ADDR",
      "PROTO",
      "HELO",
      "REVERSE_NAME",
      "PORT",
      "LOGIN",
      "DESTADDR",
      "DESTPORT",
    ]);
    expect(offeredAttributes("250-postfix.test\n250-PIPELINING\n250 CHUNKING")).toBeNull();
    expect(offeredAttributes("250-mx.example\n250 xclient name addr")).toEqual(new Set(["NAME", "ADDR"]));
  });
});

describe("xclientCommand", () => {
  it("names the client's address, port, HELO and login in one command, NAME unavailable, PROTO ESMTP", () => {
    expect(xclientCommand(ALICE, ALL)).toBe(
      "XCLIENT NAME=[UNAVAILABLE] ADDR=192.0.2.7 PORT=50123 HELO=laptop.example PROTO=ESMTP LOGIN=alice",
    );
  });

  it("sends no LOGIN for a client that did not authenticate", () => {
    expect(xclientCommand({ ...ALICE, login: null }, ALL)).not.toContain("LOGIN");
  });

  it("xtext-encodes the login", () => {
    expect(xclientCommand({ ...ALICE, login: "jürgen+test" }, ALL)).toContain(" LOGIN=j+C3+BCrgen+2Btest");
  });

  it("sends only the attributes the upstream offers (an older Postfix without PORT and LOGIN)", () => {
    expect(xclientCommand(ALICE, new Set(["NAME", "ADDR", "PROTO", "HELO"]))).toBe(
      "XCLIENT NAME=[UNAVAILABLE] ADDR=192.0.2.7 HELO=laptop.example PROTO=ESMTP",
    );
  });

  it("sends HELO as [UNAVAILABLE] when the client sent none, or one that is not a single printable word", () => {
    expect(xclientCommand({ ...ALICE, helo: null }, ALL)).toContain(" HELO=[UNAVAILABLE] ");
    expect(xclientCommand({ ...ALICE, helo: "two words" }, ALL)).toContain(" HELO=[UNAVAILABLE] ");
  });

  it("keeps every value within Postfix's 255 characters and the line within 512 octets", () => {
    const longHelo = `${"h".repeat(250)}.example`;
    const command = xclientCommand({ ...ALICE, helo: longHelo, login: "l".repeat(255) }, ALL);
    expect(command).toContain(" HELO=[UNAVAILABLE] ");
    expect(command).toContain(` LOGIN=${"l".repeat(255)}`);
    expect(command.length + 2).toBeLessThanOrEqual(512);
  });

  it("refuses a login it cannot send whole, rather than sending the message without it", () => {
    const tooLong = () => xclientCommand({ ...ALICE, login: "ü".repeat(50) }, ALL);
    expect(tooLong).toThrow(XclientFailure);
    expect(tooLong).toThrow(/login is too long/);
  });
});

describe("Slots", () => {
  it("lets at most `size` holders work at once and the others in their order", async () => {
    const slots = new Slots(2);
    const started: number[] = [];
    let running = 0;
    let most = 0;
    const gates = [0, 1, 2, 3].map(() => {
      let resolve = () => {};
      const promise = new Promise<void>((done) => (resolve = done));
      return { promise, resolve };
    });
    const work = [0, 1, 2, 3].map((n) =>
      slots.hold(async () => {
        started.push(n);
        running += 1;
        most = Math.max(most, running);
        await gates[n]?.promise;
        running -= 1;
        return n;
      }),
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toEqual([0, 1]);
    gates[1]?.resolve();
    await work[1];
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toEqual([0, 1, 2]);
    for (const gate of gates) gate.resolve();
    expect(await Promise.all(work)).toEqual([0, 1, 2, 3]);
    expect(most).toBe(2);
  });

  it("frees the slot when the work fails", async () => {
    const slots = new Slots(1);
    await expect(slots.hold(() => Promise.reject(new Error("upstream down")))).rejects.toThrow("upstream down");
    expect(await slots.hold(() => Promise.resolve("next"))).toBe("next");
  });
});
