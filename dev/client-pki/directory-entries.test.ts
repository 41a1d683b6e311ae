// Proves the certificate-mapping directory data: loaded into a real slapd, the AsyncOS, mail, UPN and cn filters
// find exactly the entries directory-entries.ts says they do.
import { Client } from "ldapts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SEED, startSlapd, type SlapdInstance } from "../slapd/index.ts";
import { CAC_SCHEMA, CERTS_DN, certUsers, certUsersLdif } from "./directory-entries.ts";
import { ALICE_IDENTITY_LEAVES, generateClientPki, type ClientPki } from "./index.ts";

describe("certificate-mapping directory data", () => {
  let pki: ClientPki;
  let slapd: SlapdInstance;
  let client: Client;

  beforeAll(async () => {
    pki = await generateClientPki();
    slapd = await startSlapd({ extraSchema: CAC_SCHEMA, extraLdif: certUsersLdif(pki) });
    client = new Client({ url: slapd.ldapUrl, timeout: 5_000, connectTimeout: 5_000 });
    await client.bind(slapd.serviceDn, slapd.servicePassword);
  });
  afterAll(async () => {
    await client?.unbind().catch(() => undefined);
    await slapd?.close();
  });

  const dns = async (filter: string): Promise<string[]> => {
    const { searchEntries } = await client.search(SEED.baseDn, { scope: "sub", filter, attributes: ["1.1"] });
    return searchEntries.map((e) => e.dn).sort();
  };
  const asyncOs = (cn: string, sn: string): string => `(&(objectClass=posixAccount)(caccn=${cn})(cacserial=${sn}))`;

  it("AsyncOS-style (caccn, cacserial) finds exactly alice's cert entry for alice", async () => {
    const users = certUsers(pki);
    expect(await dns(asyncOs("alice", pki.leaves.alice.serialHex))).toEqual([users.alice.dn]);
    expect(await dns(asyncOs("alice", pki.leaves.alice.serialHex.toLowerCase()))).toEqual([users.alice.dn]);
    expect(await dns(asyncOs("alice", pki.leaves.bob.serialHex))).toEqual([]);
    for (const leaf of ALICE_IDENTITY_LEAVES) {
      expect(await dns(asyncOs("alice", pki.leaves[leaf].serialHex)), leaf).toEqual([users.alice.dn]);
    }
  });

  it("bob is ambiguous by caccn; dave, erin, revoked map once; carol nowhere", async () => {
    const users = certUsers(pki);
    expect(await dns("(caccn=bob)")).toEqual([users.bob1.dn, users.bob2.dn].sort());
    expect(await dns(asyncOs("bob", pki.leaves.bob.serialHex))).toHaveLength(2);
    expect(await dns(asyncOs("dave", pki.leaves.subjectEmailOnly.serialHex))).toEqual([users.dave.dn]);
    expect(await dns(asyncOs("erin", pki.leaves.serialLeadingZero.serialHex))).toEqual([users.erin.dn]);
    expect(await dns(asyncOs("erin", `00${pki.leaves.serialLeadingZero.serialHex}`))).toEqual([]);
    expect(await dns(asyncOs("revoked", pki.leaves.revoked.serialHex))).toEqual([users.revoked.dn]);
    expect(await dns("(|(caccn=carol)(mail=carol@example.com)(cn=carol)(uid=carol))")).toEqual([]);
  });

  it("mail, UPN and cn mappings find one entry each", async () => {
    expect(await dns("(mail=alice@example.com)")).toEqual([SEED.users.alice.dn]);
    expect(await dns("(mail=bob@example.com)")).toEqual([SEED.users.bob.dn]);
    expect(await dns("(mail=dave@example.com)")).toEqual([`uid=dave,${CERTS_DN}`]);
    expect(await dns("(mail=erin@example.com)")).toEqual([`uid=erin,${CERTS_DN}`]);
    expect(await dns("(cacupn=alice@corp.example.com)")).toEqual([`uid=alice.cert,${CERTS_DN}`]);
    expect(await dns("(cn=alice)")).toEqual([SEED.users.alice.dn]);
    expect(await dns("(cn=bob)")).toEqual([SEED.users.bob.dn]);
    expect(await dns("(caccn=ali*)")).toEqual([`uid=alice.cert,${CERTS_DN}`]);
  });

  it("alice's userCertificate;binary reads back as her DER", async () => {
    const { searchEntries } = await client.search(`uid=alice.cert,${CERTS_DN}`, {
      scope: "base",
      attributes: ["userCertificate;binary"],
      explicitBufferAttributes: ["userCertificate;binary"],
    });
    const value = searchEntries[0]?.["userCertificate;binary"];
    const first = Array.isArray(value) ? value[0] : value;
    expect(Buffer.isBuffer(first)).toBe(true);
    expect(new Uint8Array(first as Buffer)).toEqual(pki.leaves.alice.der);
  });
});
