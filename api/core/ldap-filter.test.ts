import { FilterParser } from "ldapts";
import { describe, expect, it } from "vitest";
import {
  escapeFilterValue,
  fillFilter,
  generalizedTime,
  templateTokens,
  userTokens,
  withTimeToken,
} from "./ldap-filter.ts";

describe("escapeFilterValue (RFC 4515)", () => {
  it.each([
    ["*", "\\2a"],
    ["(", "\\28"],
    [")", "\\29"],
    ["\\", "\\5c"],
    ["\u0000", "\\00"],
    ["*)(uid=*))(|(uid=*", "\\2a\\29\\28uid=\\2a\\29\\29\\28|\\28uid=\\2a"],
    ["alice", "alice"],
    ["jörg", "j\\c3\\b6rg"],
  ])("escapes %j as %j", (value, escaped) => {
    expect(escapeFilterValue(value)).toBe(escaped);
  });

  it("keeps an injection attempt inside one equality assertion", () => {
    const filled = fillFilter("(&(objectClass=person)(uid={u}))", { u: "*)(uid=*))(|(uid=*" });
    expect(filled.ok).toBe(true);
    if (!filled.ok) return;
    const parsed = FilterParser.parseString(filled.filter);
    // Still an AND of exactly the two equality filters the template had.
    expect(parsed.constructor.name).toBe("AndFilter");
    expect((parsed as unknown as { filters: unknown[] }).filters).toHaveLength(2);
  });
});

describe("fillFilter", () => {
  it("fails closed when a token has no value", () => {
    expect(fillFilter("(mail={a})", { u: "alice" })).toEqual({ ok: false, missing: ["a"] });
  });

  it("fills every use of a token, text around and between tokens kept", () => {
    expect(fillFilter("{u}(|(uid={u})(mail={a}))x", { u: "a*", a: "a@b" })).toEqual({
      ok: true,
      filter: "a\\2a(|(uid=a\\2a)(mail=a@b))x",
    });
    expect(fillFilter("(objectClass=*)", {})).toEqual({ ok: true, filter: "(objectClass=*)" });
  });

  it("formats {t} only for a template that uses it", () => {
    // An invalid date throws when formatted: a template without {t} must never format it.
    const tokens = withTimeToken({ u: "alice" }, new Date(Number.NaN));
    expect(fillFilter("(uid={u})", tokens)).toEqual({ ok: true, filter: "(uid=alice)" });
    expect(() => fillFilter("(validTo>={t})", tokens)).toThrow(RangeError);
  });

  it("lists the tokens a template uses", () => {
    expect(templateTokens("(&(uid={u})(member={dn})(x={u}))")).toEqual(["u", "dn"]);
  });
});

describe("user tokens", () => {
  it("splits user@domain into {a} and {d}", () => {
    const tokens = userTokens("alice@example.com", new Date("2026-11-27T21:05:09Z"));
    expect(tokens).toEqual({ u: "alice@example.com", a: "alice@example.com", d: "example.com", t: "20261127210509Z" });
  });

  it("has no {a} or {d} for a bare user name", () => {
    const tokens = userTokens("alice", new Date(0));
    expect(tokens.a).toBeUndefined();
    expect(tokens.d).toBeUndefined();
  });

  it("formats {t} as GeneralizedTime", () => {
    expect(generalizedTime(new Date("2001-02-03T04:05:06.789Z"))).toBe("20010203040506Z");
  });
});
