/**
 * `fronts.postfixPolicy` (contract/fronts-config.ts): Postfix policy-delegation servers (`check_policy_service`),
 * each on a TCP address or a unix socket, deciding for one listener (fronts/postfix-policy/).
 *
 *   fronts:
 *     postfixPolicy:
 *       - listener: submission
 *         listen: "127.0.0.1:10040"          # or { path: /run/smtpgate/policy, mode: "0660" }
 *
 * The checks below are those only a policy server needs: Postfix verifies the client certificate itself and passes
 * on facts about it (fingerprints, names), never the certificate, so a profile that checks revocation or compares
 * the certificate with userCertificate;binary cannot decide here; and the sender check needs the listener's host
 * access table (the mail-flow policy says senderLogin).
 */
import type { FrontsConfig } from "../../contract/fronts-config.ts";
import type { Config } from "./schema.ts";

type Issue = { path: (string | number)[]; message: string };

/** What makes a listener unusable behind a policy server, as config problems at fronts.postfixPolicy.N. */
export function postfixPolicyProblems(
  config: Pick<Config, "listeners" | "authProfiles" | "certificateQueries">,
  fronts: FrontsConfig["postfixPolicy"],
): Issue[] {
  const issues: Issue[] = [];
  for (const [index, front] of fronts.entries()) {
    const at = ["fronts", "postfixPolicy", index];
    const listener = config.listeners[front.listener];
    if (!listener) {
      issues.push({ path: [...at, "listener"], message: `no listener named "${front.listener}"` });
      continue;
    }
    if (listener.hostAccessTable.length === 0)
      issues.push({
        path: [...at, "listener"],
        message: `listener "${front.listener}" has no hostAccessTable: the policy server finds the client's mail-flow policy (senderLogin) there, by client_address`,
      });
    const profile = config.authProfiles[listener.authProfile];
    if (profile?.type !== "certificate") continue;
    if (profile.revocation)
      issues.push({
        path: [...at, "listener"],
        message: `listener "${front.listener}" uses auth profile "${listener.authProfile}", which checks revocation: Postfix passes neither the client certificate nor its serial number, so no CRL can be checked on this path. Remove revocation from that profile (revoke a certificate by removing its mapping in LDAP) or use a listener whose profile has none`,
      });
    if (config.certificateQueries[profile.query]?.matchUserCertificate)
      issues.push({
        path: [...at, "listener"],
        message: `listener "${front.listener}" uses certificate query "${profile.query}" with matchUserCertificate: Postfix passes no certificate to compare; map by {fp_sha256} instead`,
      });
  }
  return issues;
}
