/**
 * A listener's references resolved once, at start and on reload, not per decision: its policy document for
 * relays, and its auth profiles: listener → auth profile → query → directory (and, for certificate profiles,
 * anchors, intermediates, limits and the revocation check over the CRL store).
 */
import type { DecisionCache } from "../cache/decision-cache.ts";
import type { ListenerPolicy } from "../../contract/listener-policy.ts";
import type { Config } from "../config/schema.ts";
import type { AllowanceQuery } from "../core/allowance.ts";
import type { CertificateProfile } from "../core/certificate-auth.ts";
import type { Directory } from "../core/directory.ts";
import type { SmtpAuthQuery } from "../core/smtp-auth.ts";
import type { Decision } from "../core/verdict.ts";
import { DEFAULT_CHAIN_LIMITS } from "../pki/certificate-chain.ts";
import type { CrlStore } from "../pki/crl-store.ts";
import type { GateOptions } from "./gate.ts";

/** A cached SMTP AUTH decision and the generation its identity had then (a flush of the identity drops it). */
export interface CachedAuth {
  decision: Decision;
  identityGeneration: number | null;
}

export interface LdapProfile {
  name: string;
  query: SmtpAuthQuery;
  directory: Directory;
  cache: DecisionCache<CachedAuth> | null;
}

type AuthProfiles = Config["authProfiles"][string];
type DirectoryOf = (name: string) => Directory;

export function ldapProfileOf(
  name: string,
  profile: Extract<AuthProfiles, { type: "ldap" }>,
  config: Config,
  directory: DirectoryOf,
): Omit<LdapProfile, "cache"> {
  const query = config.smtpAuthQueries[profile.query];
  if (!query) throw new Error(`auth profile ${name}: no query ${profile.query}`);
  const baseDn = baseDnOf(config, query);
  return {
    name,
    directory: directory(query.directory),
    query: {
      baseDn,
      filter: query.filter,
      ...(query.bindDnTemplate === undefined ? {} : { bindDnTemplate: query.bindDnTemplate }),
      userIdAttribute: query.userIdAttribute,
      addressAttributes: query.addressAttributes,
      method: query.method,
      passwordAttribute: query.passwordAttribute,
      allowPlaintextPasswords: query.allowPlaintextPasswords,
      ...allowanceOf(query, baseDn),
    },
  };
}

export function certificateProfileOf(
  name: string,
  profile: Extract<AuthProfiles, { type: "certificate" }>,
  config: Config,
  options: Pick<GateOptions, "trustAnchors" | "intermediates" | "certificateObserver">,
  crls: CrlStore | null,
  directory: DirectoryOf,
): CertificateProfile {
  const query = config.certificateQueries[profile.query];
  if (!query) throw new Error(`auth profile ${name}: no certificate query ${profile.query}`);
  const anchors = options.trustAnchors?.[name];
  if (!anchors || anchors.length === 0) throw new Error(`auth profile ${name}: no trust anchors`);
  const revocation = profile.revocation;
  if (revocation && !crls) throw new Error(`auth profile ${name}: revocation configured but no CRL store`);
  const baseDn = baseDnOf(config, query);
  return {
    name,
    anchors,
    intermediates: options.intermediates?.[name] ?? [],
    limits: {
      ...DEFAULT_CHAIN_LIMITS,
      maxChainLength: profile.maxChainLength,
      maxCertificateBytes: profile.maxCertificateBytes,
    },
    allowNoExtendedKeyUsage: profile.allowNoExtendedKeyUsage,
    revocation:
      revocation && crls
        ? {
            whenUnknown: revocation.whenUnknown,
            check: (certificate, issuer) =>
              crls.check(certificate, issuer, {
                sources: revocation.crlSources,
                useDistributionPoints: revocation.useDistributionPoints,
                staleGraceSeconds: revocation.staleGraceSeconds,
              }),
          }
        : null,
    query: {
      baseDn,
      filter: query.filter,
      userIdAttribute: query.userIdAttribute,
      addressAttributes: query.addressAttributes,
      matchUserCertificate: query.matchUserCertificate,
      ...allowanceOf(query, baseDn),
    },
    directory: directory(query.directory),
    allowAuthFallback: profile.allowAuthFallback,
    onInvalidCertificate: profile.onInvalidCertificate,
    observer: options.certificateObserver,
  };
}

/** The listener's host access table and the policies it uses, or null for an unknown listener. */
export function listenerPolicyOf(config: Config, name: string): ListenerPolicy | null {
  if (!Object.hasOwn(config.listeners, name)) return null;
  const listener = config.listeners[name] as Config["listeners"][string];
  const profile = config.authProfiles[listener.authProfile];
  const used = new Set(listener.hostAccessTable.map((group) => group.policy));
  return {
    listener: name,
    authProfile: {
      name: listener.authProfile,
      type: profile?.type ?? "ldap",
      allowAuthFallback: profile?.type === "certificate" ? profile.allowAuthFallback !== undefined : true,
    },
    hostAccessTable: listener.hostAccessTable,
    mailFlowPolicies: Object.fromEntries(
      Object.entries(config.mailFlowPolicies).filter(([policy]) => used.has(policy)),
    ),
    acceptedDomains: listener.acceptedDomains,
  };
}

/** A query's base: its own, else its directory's. */
function baseDnOf(config: Config, query: { directory: string; baseDn?: string | undefined }): string {
  return query.baseDn ?? (config.directories[query.directory]?.baseDn as string);
}

/** A query's allowance with its base resolved (the query's own base by default). */
function allowanceOf(
  query: { allowance?: { filter: string; baseDn?: string | undefined } | undefined },
  baseDn: string,
): { allowance?: AllowanceQuery } {
  return query.allowance
    ? { allowance: { filter: query.allowance.filter, baseDn: query.allowance.baseDn ?? baseDn } }
    : {};
}
