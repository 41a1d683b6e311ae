import { describe, expect, it } from "vitest";
import { addressesOf, identityOf } from "./directory-entry.ts";

const entry = (attributes: Record<string, string[]>) => ({ dn: "uid=alice,ou=people,dc=example,dc=com", attributes });

describe("identityOf", () => {
  it("is the one value of the user ID attribute, whatever the case of the attribute's name", () => {
    expect(identityOf(entry({ sAMAccountName: ["ASmith"] }), "samaccountname")).toEqual({
      ok: true,
      identity: "ASmith",
    });
  });

  it("fails closed without a value or with several", () => {
    expect(identityOf(entry({ uid: [""] }), "uid")).toMatchObject({ ok: false, problem: "missing" });
    expect(identityOf(entry({ uid: ["alice", "asmith"] }), "uid")).toMatchObject({ ok: false, problem: "several" });
  });
});

describe("addressesOf", () => {
  it("is null without address attributes, [] when the entry has none of them", () => {
    expect(addressesOf(entry({ mail: ["alice@example.com"] }), [])).toBeNull();
    expect(addressesOf(entry({}), ["mail"])).toEqual([]);
  });

  it("lower-cases the domain only, keeps the order of the attributes and drops duplicates", () => {
    expect(
      addressesOf(
        entry({
          mail: ["Alice@Example.COM"],
          mailAlternateAddress: ["alice@example.com", "Alice@example.com", "a.smith@Corp.Example"],
        }),
        ["mail", "mailAlternateAddress"],
      ),
    ).toEqual(["Alice@example.com", "alice@example.com", "a.smith@corp.example"]);
  });

  it("keeps only the smtp: values of proxyAddresses, prefix removed", () => {
    expect(
      addressesOf(
        entry({
          proxyAddresses: [
            "SMTP:Alice.Smith@Corp.Example",
            "smtp:asmith@corp.example",
            "X500:/o=Corp/ou=Exchange/cn=Recipients/cn=asmith",
            "sip:asmith@corp.example",
          ],
        }),
        ["proxyAddresses"],
      ),
    ).toEqual(["Alice.Smith@corp.example", "asmith@corp.example"]);
  });

  it("drops values that are no address", () => {
    expect(
      addressesOf(entry({ mail: ["alice", "@example.com", "alice@", "a b@example.com", "<a@b>"] }), ["mail"]),
    ).toEqual([]);
  });
});
