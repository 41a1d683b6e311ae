// Directory data for certificate mapping: a small schema (CAC_SCHEMA) and entries under ou=certs (certUsersLdif)
// for the client PKI of client-pki.ts. Use both together:
//
//   const pki = await generateClientPki();
//   const slapd = await startSlapd({ extraSchema: CAC_SCHEMA, extraLdif: certUsersLdif(pki) });
//
// Entries (base dc=example,dc=com; each cert entry's cn equals its uid, so `(cn=alice)` etc. still finds only the
// seed users):
//
//   uid=alice.cert,ou=certs    inetOrgPerson+posixAccount+cacPerson; caccn alice; cacserial <alice> plus the serial
//                              of every other leaf with alice's identity (ALICE_IDENTITY_LEAVES: expired,
//                              notYetValid, otherCa, selfSigned, ...); cacupn alice@corp.example.com;
//                              userCertificate;binary <alice DER>; NO mail.
//   uid=bob.cert1,ou=certs     caccn bob; cacserial <bob>; no mail           } two entries: bob is ambiguous
//   uid=bob.cert2,ou=certs     caccn bob; cacserial <bob>; no mail           } by caccn (with or without serial)
//   uid=dave,ou=certs          caccn dave; cacserial <subjectEmailOnly>; mail dave@example.com
//   uid=erin,ou=certs          caccn erin; cacserial <serialLeadingZero> (starts FF01, no 00); mail erin@example.com
//   uid=revoked,ou=certs       caccn revoked; cacserial <revoked>; mail revoked@example.com
//   (carol: nothing anywhere — the valid-but-unmapped identity)
//
// Which filter finds what ({cn} = subject CN, {sn} = serialHex, {email} = SAN rfc822Name, {upn} = SAN UPN):
//
//   (&(objectClass=posixAccount)(caccn={cn})(cacserial={sn}))     AsyncOS style
//       alice + every ALICE_IDENTITY_LEAVES leaf → uid=alice.cert   bob → bob.cert1 AND bob.cert2 (ambiguous)
//       subjectEmailOnly (dave) → uid=dave   serialLeadingZero (erin) → uid=erin   revoked → uid=revoked
//       carol → nothing
//   (caccn={cn})                  alice → alice.cert; bob → 2 entries; dave, erin, revoked → 1; carol → 0
//   (mail={email})                alice (and her defect leaves) → uid=alice,ou=people (seed);
//                                 bob → uid=bob,ou=people (seed, not in cn=smtp-users); erin → uid=erin,ou=certs;
//                                 revoked → uid=revoked,ou=certs; carol → nothing
//   (mail={subject emailAddress}) subjectEmailOnly → uid=dave,ou=certs (the only way to map that leaf: no SAN)
//   (cacupn={upn})                alice (and her defect leaves) → uid=alice.cert
//   userCertificate;binary        read it back from uid=alice.cert and compare with alice's DER (OpenLDAP's
//                                 certificateExactMatch wants a "{ serialNumber …, issuer … }" assertion, not DER)
//
// Only uid=alice,ou=people is in cn=smtp-users (seed): the cert entries are in no group.
import { ALICE_IDENTITY_LEAVES } from "./index.ts";
import type { ClientPki } from "./index.ts";

const BASE_DN = "dc=example,dc=com";
export const CERTS_DN = `ou=certs,${BASE_DN}`;

/**
 * OpenLDAP schema (slapd.conf syntax) for AsyncOS-style certificate mapping: caccn, cacserial and cacupn
 * (directoryString, caseIgnoreMatch + substrings) and the AUXILIARY class cacPerson. Needs core (and nis for the
 * posixAccount the entries also are). OIDs under 1.3.6.1.4.1.55555.2 (test arc).
 */
export const CAC_SCHEMA = `# smtpgate test schema: certificate-mapping attributes (test OID arc 1.3.6.1.4.1.55555.2)
attributetype ( 1.3.6.1.4.1.55555.2.1.1 NAME 'caccn'
	DESC 'Common name of the subject of a client certificate'
	EQUALITY caseIgnoreMatch
	SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )

attributetype ( 1.3.6.1.4.1.55555.2.1.2 NAME 'cacserial'
	DESC 'Serial number of a client certificate (hex)'
	EQUALITY caseIgnoreMatch
	SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )

attributetype ( 1.3.6.1.4.1.55555.2.1.3 NAME 'cacupn'
	DESC 'User principal name (SAN otherName 1.3.6.1.4.1.311.20.2.3) of a client certificate'
	EQUALITY caseIgnoreMatch
	SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )

objectclass ( 1.3.6.1.4.1.55555.2.2.1 NAME 'cacPerson'
	DESC 'Holder of client certificates'
	SUP top AUXILIARY
	MAY ( caccn $ cacserial $ cacupn ) )
`;

export interface CertUser {
  dn: string;
  uid: string;
  caccn: string;
  cacserial: string[];
  cacupn?: string;
  mail?: string;
  userCertificate?: Uint8Array;
}

/** The cert entries certUsersLdif writes, by key (alice, bob1, bob2, dave, erin, revoked). */
export function certUsers(pki: ClientPki): Record<"alice" | "bob1" | "bob2" | "dave" | "erin" | "revoked", CertUser> {
  const { leaves } = pki;
  const dn = (uid: string): string => `uid=${uid},${CERTS_DN}`;
  return {
    alice: {
      dn: dn("alice.cert"),
      uid: "alice.cert",
      caccn: "alice",
      cacserial: ALICE_IDENTITY_LEAVES.map((l) => leaves[l].serialHex),
      cacupn: "alice@corp.example.com",
      userCertificate: leaves.alice.der,
    },
    bob1: { dn: dn("bob.cert1"), uid: "bob.cert1", caccn: "bob", cacserial: [leaves.bob.serialHex] },
    bob2: { dn: dn("bob.cert2"), uid: "bob.cert2", caccn: "bob", cacserial: [leaves.bob.serialHex] },
    dave: {
      dn: dn("dave"),
      uid: "dave",
      caccn: "dave",
      cacserial: [leaves.subjectEmailOnly.serialHex],
      mail: "dave@example.com",
    },
    erin: {
      dn: dn("erin"),
      uid: "erin",
      caccn: "erin",
      cacserial: [leaves.serialLeadingZero.serialHex],
      mail: "erin@example.com",
    },
    revoked: {
      dn: dn("revoked"),
      uid: "revoked",
      caccn: "revoked",
      cacserial: [leaves.revoked.serialHex],
      mail: "revoked@example.com",
    },
  };
}

/** LDIF (entries only) for startSlapd's extraLdif: ou=certs and the entries of certUsers(pki). */
export function certUsersLdif(pki: ClientPki): string {
  const entries = [[`dn: ${CERTS_DN}`, "objectClass: organizationalUnit", "ou: certs"].join("\n")];
  Object.values(certUsers(pki)).forEach((u, i) => {
    entries.push(
      [
        `dn: ${u.dn}`,
        "objectClass: inetOrgPerson",
        "objectClass: posixAccount",
        "objectClass: cacPerson",
        `uid: ${u.uid}`,
        `cn: ${u.uid}`,
        `sn: ${u.uid}`,
        `uidNumber: ${20001 + i}`,
        "gidNumber: 20000",
        `homeDirectory: /home/${u.uid}`,
        `caccn: ${u.caccn}`,
        ...u.cacserial.map((s) => `cacserial: ${s}`),
        ...(u.cacupn ? [`cacupn: ${u.cacupn}`] : []),
        ...(u.mail ? [`mail: ${u.mail}`] : []),
        ...(u.userCertificate ? [`userCertificate;binary:: ${Buffer.from(u.userCertificate).toString("base64")}`] : []),
      ].join("\n"),
    );
  });
  return entries.join("\n\n") + "\n";
}
