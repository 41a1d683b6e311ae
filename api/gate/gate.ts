/**
 * The gate: from a listener's name to the decision, following the configuration's references
 * (listener → auth profile → query → directory). Pure over its inputs: directories, trust anchors and the CRL
 * store are given, so the Node and Workers entry points differ only in how they build those.
 *
 * The one state it keeps is each auth profile's decision cache (api/cache/decision-cache.ts), in memory, when the
 * profile's `cache` asks for one: SMTP AUTH decisions of ldap profiles, certificate outcomes of certificate
 * profiles. What is refused without the directory, a tempfail, and a certificate outcome that hangs on an unknown
 * revocation status are never kept. A certificate outcome holds the allowance query's answer, not what a listener
 * made of it, so one entry serves listeners with different onAllowanceFailure; an SMTP AUTH decision is final
 * for its listener, which is part of its key. Keys hold the name as typed: `ALICE` and `alice` are two entries
 * whose decisions name the same identity.
 */
import {
  CacheKeys,
  cacheEnabled,
  DecisionCache,
  type CacheOutcome,
  type CachePolicy,
} from "../cache/decision-cache.ts";
import type { ListenerPolicy } from "../../contract/listener-policy.ts";
import type { Config } from "../config/schema.ts";
import type { CrlStore } from "../pki/crl-store.ts";
import type { X509Certificate } from "../pki/x509.ts";
import {
  allowanceStanding,
  evaluateCertificate,
  tlsVerdict,
  type CertificateObserver,
  type CertificateOutcome,
  type CertificateProfile,
} from "../core/certificate-auth.ts";
import type { Directory } from "../core/directory.ts";
import { decideSmtpAuth } from "../core/smtp-auth.ts";
import { SMTP_REPLIES } from "../../contract/smtp-replies.ts";
import type { Reason } from "../../contract/verdict.ts";
import { deny, proceed, tempfail, type Decision } from "../core/verdict.ts";
import {
  certificateProfileOf,
  ldapProfileOf,
  listenerPolicyOf,
  type CachedAuth,
  type LdapProfile,
} from "./profiles.ts";
import { decideByCertificateFacts, decideByIdentity } from "./mta-facts.ts";
import { readiness, type Readiness } from "./readiness.ts";
import type {
  AuthRequest,
  CertificateFactsRequest,
  GateResult,
  IdentityRequest,
  ProfileCacheStats,
  TlsRequest,
} from "./requests.ts";

export type {
  AuthRequest,
  CertificateFactsRequest,
  GateResult,
  IdentityRequest,
  PresentedCertificate,
  ProfileCacheStats,
  TlsRequest,
} from "./requests.ts";
import type { BruteForceLimiter } from "../core/brute-force.ts";
import { guardSmtpAuth } from "./brute-force-guard.ts";
import { smtpAuthThroughCache, staleDetail } from "./auth-cache.ts";

export interface GateOptions {
  config: Config;
  directories: Readonly<Record<string, Directory>>;
  /** Parsed trust anchors of each certificate auth profile. */
  trustAnchors?: Readonly<Record<string, readonly X509Certificate[]>>;
  /** Intermediate CAs of each certificate profile, for clients that send only their leaf. */
  intermediates?: Readonly<Record<string, readonly X509Certificate[]>>;
  crls?: CrlStore | null;
  now?: () => Date;
  /** Told what each certificate check found (smtpgate test-cert); decisions do not depend on it. */
  certificateObserver?: CertificateObserver;
  /** Brute-force control of SMTP AUTH, and the user generations that flush cached decisions. */
  bruteForce?: BruteForceLimiter | null;
}

interface ProfileCache {
  kind: ProfileCacheStats["kind"];
  policy: CachePolicy;
  cache: Pick<DecisionCache<unknown>, "flush" | "stats"> | null;
}

export class Gate {
  readonly #config: Config;
  readonly #directories: Readonly<Record<string, Directory>>;
  readonly #now: () => Date;
  readonly crls: CrlStore | null;
  /** Profiles with their references and defaults resolved once, not per decision. */
  readonly #ldapProfiles = new Map<string, LdapProfile>();
  readonly #certificateProfiles = new Map<string, CertificateProfile>();
  readonly #certificateCaches = new Map<string, DecisionCache<CertificateOutcome>>();
  /** Every auth profile's cache (null where its policy keeps nothing), for stats and flushes. */
  readonly #caches = new Map<string, ProfileCache>();
  /** Cache keys under a random key made for this gate: never configured, never logged, gone with the process. */
  readonly #cacheKeys = new CacheKeys();
  readonly bruteForce: BruteForceLimiter | null;

  constructor(options: GateOptions) {
    const { config } = options;
    this.#config = config;
    this.#directories = options.directories;
    this.#now = options.now ?? (() => new Date());
    this.crls = options.crls ?? null;
    this.bruteForce = options.bruteForce ?? null;
    const directory = (name: string): Directory => {
      const found = options.directories[name];
      if (!found) throw new Error(`no directory adapter for "${name}"`);
      return found;
    };
    const clock = (): number => this.#now().getTime();
    const cacheFor = <V>(name: string, kind: ProfileCache["kind"], policy: CachePolicy): DecisionCache<V> | null => {
      const cache = cacheEnabled(policy) ? new DecisionCache<V>(policy, clock) : null;
      this.#caches.set(name, { kind, policy, cache });
      return cache;
    };

    for (const [name, profile] of Object.entries(config.authProfiles)) {
      if (profile.type === "ldap") {
        this.#ldapProfiles.set(name, {
          ...ldapProfileOf(name, profile, config, directory),
          cache: cacheFor<CachedAuth>(name, "auth", profile.cache),
        });
        continue;
      }
      this.#certificateProfiles.set(name, certificateProfileOf(name, profile, config, options, this.crls, directory));
      const cache = cacheFor<CertificateOutcome>(name, "certificate", profile.cache);
      if (cache) this.#certificateCaches.set(name, cache);
    }
  }

  /** The listener's host access table and the policies it uses, or null for an unknown listener. */
  /** Every listener's name (the brute-force listings apply each one's policy). */
  listenerNames(): string[] {
    return Object.keys(this.#config.listeners);
  }

  listenerPolicy(name: string): ListenerPolicy | null {
    return listenerPolicyOf(this.#config, name);
  }

  /** At STARTTLS: the client certificate, or its absence. */
  async decideTls(request: TlsRequest): Promise<GateResult> {
    const profileName = this.#profileOf(request.listener);
    if (profileName === null) return unknownListener(request.listener);
    const profile = this.#certificateProfiles.get(profileName);
    if (!profile)
      return {
        ok: true,
        decision: proceed("certificate-not-used", {
          profile: profileName,
          method: null,
          detail: "the listener's auth profile does not use certificates",
        }),
      };
    const { outcome, cache } = await this.#certificate(request.certificate?.chain ?? null, profile);
    const decision = tlsVerdict(outcome, profile, this.#onAllowanceFailure(request.listener));
    return { ok: true, decision: withCache(decision, cache) };
  }

  /** At AUTH: credentials, judged by the listener's profile (directly, or as a certificate profile's fallback). */
  async decideAuth(request: AuthRequest): Promise<GateResult> {
    const profileName = this.#profileOf(request.listener);
    if (profileName === null) return unknownListener(request.listener);
    const ldap = this.#ldapProfiles.get(profileName);
    if (ldap) return { ok: true, decision: await this.#smtpAuth(request, ldap) };

    const profile = this.#certificateProfiles.get(profileName) as CertificateProfile;
    const base = { profile: profile.name, method: null };
    // Flow A (docs/flows.md): a certificate-only profile does not offer AUTH at all.
    if (profile.allowAuthFallback === undefined)
      return { ok: true, decision: deny("auth-not-offered", { ...base, smtp: SMTP_REPLIES.badSequence }) };
    // An absent field must not read as "the client had no certificate": a caller that forgot it would let a
    // client whose certificate was refused at STARTTLS fall back to a password.
    if (request.certificate === undefined) {
      return {
        ok: false,
        field: "certificate",
        problem: `required for listener "${request.listener}", whose profile judges the STARTTLS certificate: send null when the client presented none`,
      };
    }
    const { outcome, cache } = await this.#certificate(request.certificate?.chain ?? null, profile);
    switch (outcome.kind) {
      case "authenticated":
        // Refused by the allowance query: as for an invalid certificate, the profile says whether AUTH may follow.
        if (allowanceStanding(outcome, this.#onAllowanceFailure(request.listener)) === "refused") {
          if (profile.onInvalidCertificate === "fallback") break;
          return { ok: true, decision: withCache(tlsVerdict(outcome, profile, "reject"), cache) };
        }
        return {
          ok: true,
          decision: withCache(
            deny("already-authenticated", {
              ...base,
              method: "certificate",
              smtp: SMTP_REPLIES.badSequence,
              detail: `authenticated by certificate as ${outcome.identity}`,
            }),
            cache,
          ),
        };
      case "unavailable":
        return {
          ok: true,
          decision: withCache(
            tempfail({ ...base, method: "certificate", reason: outcome.reason, detail: outcome.detail }),
            cache,
          ),
        };
      case "invalid":
        if (profile.onInvalidCertificate === "reject") {
          const reason = outcome.reason as Exclude<Reason, "ok" | "directory-unavailable">;
          return {
            ok: true,
            decision: withCache(
              deny(reason, {
                ...base,
                method: "certificate",
                smtp: SMTP_REPLIES.certificateRequired,
                close: true,
                detail: outcome.detail,
              }),
              cache,
            ),
          };
        }
        break;
      case "missing":
      case "unmapped":
        break;
    }
    const fallback = this.#ldapProfiles.get(profile.allowAuthFallback) as LdapProfile;
    return { ok: true, decision: await this.#smtpAuth(request, fallback) };
  }

  /** A certificate the MTA verified, known by its facts (Postfix's policy attributes): no chain, no CRL. */
  async decideCertificateFacts(request: CertificateFactsRequest): Promise<GateResult> {
    const profileName = this.#profileOf(request.listener);
    if (profileName === null) return unknownListener(request.listener);
    const decision = await decideByCertificateFacts(request, profileName, {
      certificate: this.#certificateProfiles.get(profileName),
      onAllowanceFailure: this.#onAllowanceFailure(request.listener),
      now: this.#now(),
    });
    return { ok: true, decision };
  }

  /** A login the MTA authenticated, through the SMTP AUTH query of the listener's profile (or its fallback). */
  async decideIdentity(request: IdentityRequest): Promise<GateResult> {
    const profileName = this.#profileOf(request.listener);
    if (profileName === null) return unknownListener(request.listener);
    const certificate = this.#certificateProfiles.get(profileName);
    const ldap = this.#ldapProfiles.get(certificate ? (certificate.allowAuthFallback ?? "") : profileName);
    const decision = await decideByIdentity(request, profileName, {
      ldap,
      onAllowanceFailure: this.#onAllowanceFailure(request.listener),
      now: this.#now(),
    });
    return { ok: true, decision };
  }

  async #smtpAuth(request: AuthRequest, profile: LdapProfile): Promise<Decision> {
    const method = profile.query.method === "bind" ? "ldap-bind" : "ldap-password";
    const decide = (): Promise<Decision> =>
      decideSmtpAuth(request, {
        profile: profile.name,
        query: profile.query,
        onAllowanceFailure: this.#onAllowanceFailure(request.listener),
        directory: profile.directory,
        now: this.#now(),
      });
    return await guardSmtpAuth(this.bruteForce, request, { profile: profile.name, method }, (generation) =>
      smtpAuthThroughCache(request, profile, generation, {
        decide,
        cacheKeys: this.#cacheKeys,
        bruteForce: this.bruteForce,
      }),
    );
  }

  /** A certificate chain's outcome under a certificate profile, through the profile's cache when it has one. */
  async #certificate(
    chain: readonly string[] | null,
    profile: CertificateProfile,
  ): Promise<{ outcome: CertificateOutcome; cache?: CacheOutcome }> {
    const cache = this.#certificateCaches.get(profile.name);
    // No certificate is decided at once; nothing to keep.
    if (!cache || !chain || chain.length === 0)
      return { outcome: await evaluateCertificate(chain, profile, this.#now()) };

    // The whole chain (the path may depend on every certificate sent) and the CRLs' version: a new CRL from any
    // source starts afresh, so a revocation counts from the moment the CRL that lists it is loaded.
    const crlVersion = profile.revocation ? String(this.crls?.version ?? 0) : "-";
    const key = this.#cacheKeys.key("certificate", profile.name, crlVersion, ...chain);
    const cached = cache.get(key);
    if (cached) return { outcome: cached, cache: "hit" };
    const outcome = await evaluateCertificate(chain, profile, this.#now());
    if (outcome.kind === "unavailable") {
      const stale = outcome.reason === "directory-unavailable" ? cache.getStale(key) : undefined;
      // Only allows are served stale, and only "authenticated" outcomes are stored as allows.
      if (stale?.value.kind === "authenticated")
        return {
          outcome: { ...stale.value, detail: staleDetail(stale.ageSeconds, cache.policy, outcome.detail) },
          cache: "stale",
        };
    } else if (outcome.kind !== "missing" && outcome.reusableUntil !== undefined) {
      // Kept as an allow only when the allowance passed: one that failed is a deny for a rejecting listener, and
      // must never be served stale.
      const positive = outcome.kind === "authenticated" && outcome.allowance === "passed";
      cache.set(key, outcome, positive, outcome.reusableUntil);
    } else {
      cache.delete(key);
    }
    return { outcome, cache: "miss" };
  }

  /** Each auth profile's cache: policy and counters. */
  cacheStats(): Record<string, ProfileCacheStats> {
    const stats: Record<string, ProfileCacheStats> = {};
    for (const [name, { kind, policy, cache }] of this.#caches) {
      stats[name] = {
        kind,
        enabled: cache !== null,
        policy,
        ...(cache?.stats() ?? { entries: 0, hits: 0, misses: 0, staleServed: 0, evictions: 0 }),
      };
    }
    return stats;
  }

  /** Drops the cached decisions of one auth profile, or of all; the number dropped, or null for an unknown profile. */
  flushCache(profile?: string): number | null {
    if (profile !== undefined) {
      const entry = this.#caches.get(profile);
      return entry ? (entry.cache?.flush() ?? 0) : null;
    }
    let flushed = 0;
    for (const { cache } of this.#caches.values()) flushed += cache?.flush() ?? 0;
    return flushed;
  }

  #onAllowanceFailure(listener: string): "reject" | "allow-temporarily" {
    return this.#config.listeners[listener]?.onAllowanceFailure ?? "reject";
  }

  #profileOf(listener: string): string | null {
    return Object.hasOwn(this.#config.listeners, listener)
      ? (this.#config.listeners[listener]?.authProfile ?? null)
      : null;
  }

  /** Probes every directory and reports the CRL sources; for /readyz. */
  readiness(): Promise<Readiness> {
    return readiness(this.#directories, this.crls, this.#now());
  }
}

function withCache(decision: Decision, cache: CacheOutcome | undefined): Decision {
  return cache === undefined ? decision : { ...decision, cache };
}

function unknownListener(listener: string): GateResult {
  return { ok: false, field: "listener", problem: `no listener named "${listener}"` };
}
