/**
 * The checks across sections of the configuration, after each key has been validated on its own: every reference
 * (a listener's auth profile, a profile's query, a query's directory, a sender group's policy, a front's listener,
 * a CRL source) resolves, and settings that only make sense together are together. Each problem names its path.
 */
import type { z } from "zod";
import { postfixPolicyProblems } from "./postfix-policy.ts";
import type { ConfigShape } from "./schema.ts";

export function checkReferences(config: ConfigShape, ctx: z.RefinementCtx): void {
  for (const issue of postfixPolicyProblems(config, config.fronts.postfixPolicy))
    ctx.addIssue({ code: "custom", ...issue });
  for (const [index, front] of config.fronts.dovecotSasl.entries()) {
    if (!(front.listener in config.listeners)) {
      ctx.addIssue({
        code: "custom",
        path: ["fronts", "dovecotSasl", index, "listener"],
        message: `no listener named "${front.listener}"`,
      });
    }
  }
  // References between sections: each must name something that exists.
  for (const [key, query] of Object.entries(config.smtpAuthQueries)) {
    if (!(query.directory in config.directories)) {
      ctx.addIssue({
        code: "custom",
        path: ["smtpAuthQueries", key, "directory"],
        message: `no directory named "${query.directory}"`,
      });
    }
  }
  for (const [key, query] of Object.entries(config.certificateQueries)) {
    if (!(query.directory in config.directories)) {
      ctx.addIssue({
        code: "custom",
        path: ["certificateQueries", key, "directory"],
        message: `no directory named "${query.directory}"`,
      });
    }
  }
  for (const [key, profile] of Object.entries(config.authProfiles)) {
    if (profile.type === "ldap") {
      if (!(profile.query in config.smtpAuthQueries)) {
        ctx.addIssue({
          code: "custom",
          path: ["authProfiles", key, "query"],
          message: `no smtpAuthQueries entry named "${profile.query}"`,
        });
      }
      continue;
    }
    if (!(profile.query in config.certificateQueries)) {
      ctx.addIssue({
        code: "custom",
        path: ["authProfiles", key, "query"],
        message: `no certificateQueries entry named "${profile.query}"`,
      });
    }
    if (profile.allowAuthFallback !== undefined && config.authProfiles[profile.allowAuthFallback]?.type !== "ldap") {
      ctx.addIssue({
        code: "custom",
        path: ["authProfiles", key, "allowAuthFallback"],
        message: `no ldap auth profile named "${profile.allowAuthFallback}"`,
      });
    }
    if (profile.onInvalidCertificate === "fallback" && profile.allowAuthFallback === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["authProfiles", key, "onInvalidCertificate"],
        message: "fallback needs allowAuthFallback (the ldap profile to fall back to)",
      });
    }
    for (const [index, source] of (profile.revocation?.crlSources ?? []).entries()) {
      if (!(source in config.crlSources)) {
        ctx.addIssue({
          code: "custom",
          path: ["authProfiles", key, "revocation", "crlSources", index],
          message: `no crlSources entry named "${source}"`,
        });
      }
    }
    if (profile.revocation && profile.revocation.crlSources.length === 0 && !profile.revocation.useDistributionPoints) {
      ctx.addIssue({
        code: "custom",
        path: ["authProfiles", key, "revocation"],
        message: "name at least one crlSources entry or set useDistributionPoints",
      });
    }
  }
  for (const [key, listener] of Object.entries(config.listeners)) {
    const profile = config.authProfiles[listener.authProfile];
    if (!profile) {
      ctx.addIssue({
        code: "custom",
        path: ["listeners", key, "authProfile"],
        message: `no authProfiles entry named "${listener.authProfile}"`,
      });
    }
    for (const [index, group] of listener.hostAccessTable.entries()) {
      const policy = config.mailFlowPolicies[group.policy];
      if (!policy) {
        ctx.addIssue({
          code: "custom",
          path: ["listeners", key, "hostAccessTable", index, "policy"],
          message: `no mailFlowPolicies entry named "${group.policy}"`,
        });
        continue;
      }
      if (policy.verifyClientCertificate && profile && profile.type !== "certificate") {
        ctx.addIssue({
          code: "custom",
          path: ["listeners", key, "hostAccessTable", index, "policy"],
          message: `policy ${group.policy} verifies client certificates but the listener's auth profile is not a certificate profile`,
        });
      }
    }
  }
  for (const [key, policy] of Object.entries(config.mailFlowPolicies)) {
    if (policy.verifyClientCertificate && policy.tls === "off") {
      ctx.addIssue({
        code: "custom",
        path: ["mailFlowPolicies", key, "verifyClientCertificate"],
        message: "a client certificate needs TLS: set tls to preferred or required",
      });
    }
  }
}
