import { describe, expect, it } from "vitest";
import { closestMatch } from "./did-you-mean.ts";

describe("did you mean", () => {
  it("finds a missing, an extra, a wrong and two swapped letters", () => {
    const keys = ["hostAccessTable", "acceptedDomains", "authProfile", "onAllowanceFailure"];
    expect(closestMatch("hostAcessTable", keys)).toBe("hostAccessTable");
    expect(closestMatch("authProfiles", keys)).toBe("authProfile");
    expect(closestMatch("acceptedDomainz", keys)).toBe("acceptedDomains");
    expect(closestMatch("atuhProfile", keys)).toBe("authProfile");
    expect(closestMatch("AUTHPROFILE", keys)).toBe("authProfile");
  });

  it("suggests nothing for a word that is not close to any candidate", () => {
    expect(closestMatch("tls", ["api", "listen", "upstream"])).toBeUndefined();
    expect(closestMatch("extra", ["authProfile", "hostAccessTable"])).toBeUndefined();
    expect(closestMatch("x", [])).toBeUndefined();
  });
});
