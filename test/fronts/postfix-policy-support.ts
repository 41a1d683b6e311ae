// For the Postfix policy server's tests: certificate fingerprints as Postfix writes them, stored on their owners'
// entries, and an API configuration whose listeners map certificates by fingerprint and by public key.
import { createHash, X509Certificate } from "node:crypto";
import { Attribute, Change, Client } from "ldapts";
import type { ConfigInput } from "../../api/config/schema.ts";
import { API_TOKENS_CONFIG, slapdDirectory } from "../../dev/api.ts";
import type { ClientPki } from "../../dev/client-pki/index.ts";
import { SEED, type SlapdInstance } from "../../dev/slapd/index.ts";

const GATE = { filter: `(&(uid={u})(memberOf=${SEED.smtpUsersGroupDn}))` };

/** Postfix's `smtpd_tls_fingerprint_digest = sha256` format: `AB:CD:...`. */
function postfixFingerprint(bytes: Uint8Array): string {
  return (createHash("sha256").update(bytes).digest("hex").toUpperCase().match(/../g) as string[]).join(":");
}

export function fingerprints(der: Uint8Array): { certificate: string; publicKey: string } {
  const spki = new X509Certificate(der).publicKey.export({ type: "spki", format: "der" });
  return { certificate: postfixFingerprint(der), publicKey: postfixFingerprint(spki) };
}

const hex = (postfix: string): string => postfix.replaceAll(":", "").toLowerCase();

export function policyTestConfig(slapdInstance: SlapdInstance, trustAnchors: string): ConfigInput {
  const certificateProfile = (query: string, extra: Record<string, unknown> = {}) => ({
    type: "certificate" as const,
    query,
    trustAnchors: { pem: trustAnchors },
    ...extra,
  });
  const everyone = [{ name: "everyone", match: ["0.0.0.0/0", "::/0"], policy: "SUBMISSION" }];
  return {
    directories: { corp: slapdDirectory(slapdInstance) },
    smtpAuthQueries: { corp: { directory: "corp", allowance: GATE } },
    certificateQueries: {
      "by-fingerprint": { directory: "corp", filter: "(description=fp:{fp_sha256})", allowance: GATE },
      "by-key": { directory: "corp", filter: "(description=key:{spki_sha256})", allowance: GATE },
    },
    mailFlowPolicies: {
      SUBMISSION: { behaviour: "accept", tls: "required", smtpAuth: "required", senderLogin: "enforce" },
    },
    authProfiles: {
      corp: { type: "ldap", query: "corp" },
      fingerprint: certificateProfile("by-fingerprint", { allowAuthFallback: "corp" }),
      key: certificateProfile("by-key"),
    },
    listeners: {
      submission: { authProfile: "fingerprint", hostAccessTable: everyone },
      keys: { authProfile: "key", hostAccessTable: everyone },
    },
    api: API_TOKENS_CONFIG,
  };
}

/**
 * Stores alice's and bob's certificate fingerprints on their seed entries (`description: fp:<hex>` and
 * `key:<hex>`; a site would use an attribute of its own schema). carol's certificate is mapped nowhere.
 */
export async function addFingerprints(slapd: SlapdInstance, pki: ClientPki): Promise<void> {
  const admin = new Client({ url: slapd.ldapUrl });
  await admin.bind(slapd.adminDn, slapd.adminPassword);
  try {
    for (const user of ["alice", "bob"] as const) {
      const prints = fingerprints(pki.leaves[user].der);
      await admin.modify(
        SEED.users[user].dn,
        new Change({
          operation: "add",
          modification: new Attribute({
            type: "description",
            values: [`fp:${hex(prints.certificate)}`, `key:${hex(prints.publicKey)}`],
          }),
        }),
      );
    }
  } finally {
    await admin.unbind();
  }
}
