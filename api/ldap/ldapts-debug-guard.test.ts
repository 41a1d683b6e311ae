import { EqualityFilter, SearchRequest } from "ldapts";
import { describe, expect, it } from "vitest";
import { guardLdaptsDebugStrings } from "./ldapts-debug-guard.ts";

describe("the ldapts debug-string guard", () => {
  const request = () =>
    new SearchRequest({
      messageId: 7,
      baseDN: "dc=example,dc=com",
      filter: new EqualityFilter({ attribute: "uid", value: "alice" }),
      attributes: ["uid", "mail"],
    });

  it("leaves messages as ldapts serialises them when its debug log is on", () => {
    expect(guardLdaptsDebugStrings(true)).toBe(false);
    expect(JSON.stringify(request())).toContain("alice");
  });

  it("serialises a message as its type and ID alone when the debug log is off", () => {
    expect(guardLdaptsDebugStrings(false)).toBe(true);
    expect(JSON.parse(JSON.stringify(request()))).toEqual({ messageId: 7, type: "SearchRequest" });
    // Writing the request on the wire is untouched.
    expect(request().write().length).toBeGreaterThan(20);
  });
});
