/**
 * The smtpgate configuration file: one human-written YAML or JSON document.
 *
 * This schema is the single source of truth for the configuration: it validates the file at start-up, yields
 * the TypeScript types (`Config`) and the published JSON Schema (`npm run schema`). Names follow docs/configuration.md:
 * LDAP server profiles are `directories`, SMTP AUTH queries are `smtpAuthQueries`, and so on.
 *
 * Secrets are never written inline: a secret is `{ env: "NAME" }`, resolved from the environment at start-up.
 */
import { z } from "zod";
import { mailFlowPolicySchema, senderGroupSchema } from "../../contract/listener-policy.ts";
import { frontsSchema } from "../../contract/fronts-config.ts";
import { secretRef } from "../../lib/config/secret-ref.ts";
import { certificateQuerySchema, directorySchema, durationMs, name, smtpAuthQuerySchema } from "./ldap-schema.ts";
import { checkReferences } from "./references.ts";
import { bruteForcePolicySchema, bruteForceStoreSchema } from "./brute-force-schema.ts";

export { certificateQuerySchema, directorySchema, smtpAuthQuerySchema };

const httpUrl = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}, "not an http:// or https:// URL");

export const crlSourceSchema = z
  .strictObject({
    url: httpUrl.optional().describe("where to download the CRL (DER or PEM)"),
    file: z.string().min(1).optional().describe("a CRL file (DER or PEM); not available on Workers"),
    refreshSeconds: z
      .number()
      .int()
      .min(10)
      .max(7 * 86_400)
      .default(3_600)
      .describe("how often to fetch it again (conditional requests)"),
  })
  .refine((source) => (source.url === undefined) !== (source.file === undefined), {
    message: "give exactly one of url and file",
  });

/**
 * The decision cache of one auth profile (api/cache/decision-cache.ts). Off by default: without it every decision
 * asks the directory, so a changed password, a locked account or a removed group membership counts at once. An
 * operator who turns it on accepts that a cached allow outlives such a change by up to positiveTtlSeconds.
 */
export const decisionCacheSchema = z
  .strictObject({
    positiveTtlSeconds: z
      .number()
      .int()
      .min(0)
      .max(86_400)
      .default(0)
      .describe(
        "how long an allow is reused for the same user and password (certificate profiles: the same chain); 0 = never (default)",
      ),
    negativeTtlSeconds: z
      .number()
      .int()
      .min(0)
      .max(3_600)
      .default(0)
      .describe(
        "how long a deny (wrong password, unknown user, allowance failed, invalid certificate ...) is reused; 0 = never (default). A tempfail is never cached",
      ),
    serveStaleSeconds: z
      .number()
      .int()
      .min(0)
      .max(7 * 86_400)
      .default(0)
      .describe(
        "while the directory is unavailable, answer with a cached allow up to this old instead of a tempfail; 0 = off (default)",
      ),
    maxEntries: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(10_000)
      .describe("most decisions kept for this profile; the least recently used goes first"),
  })
  .superRefine((cache, ctx) => {
    if (cache.serveStaleSeconds > 0 && cache.serveStaleSeconds <= cache.positiveTtlSeconds) {
      ctx.addIssue({
        code: "custom",
        path: ["serveStaleSeconds"],
        message:
          "must be 0 (off) or longer than positiveTtlSeconds: an allow younger than positiveTtlSeconds is reused anyway",
      });
    }
  });

const cacheOff = { positiveTtlSeconds: 0, negativeTtlSeconds: 0, serveStaleSeconds: 0, maxEntries: 10_000 };

const ldapAuthProfileSchema = z.strictObject({
  type: z.literal("ldap").describe("ldap: SMTP AUTH checked against an smtpAuthQueries entry (flow B)"),
  query: name.describe("the SMTP AUTH query"),
  cache: decisionCacheSchema.default(cacheOff).describe("reuse of this profile's SMTP AUTH decisions (off by default)"),
});

const certificateAuthProfileSchema = z.strictObject({
  type: z
    .literal("certificate")
    .describe(
      "certificate: the STARTTLS client certificate (flow A), with SMTP AUTH through allowAuthFallback (flow C)",
    ),
  query: name.describe("the certificate query"),
  trustAnchors: z
    .union([z.strictObject({ file: z.string().min(1) }), z.strictObject({ pem: z.string().min(1) })])
    .describe("the CA certificates client certificates must chain to: a PEM bundle file, or the PEM text"),
  intermediates: z
    .union([z.strictObject({ file: z.string().min(1) }), z.strictObject({ pem: z.string().min(1) })])
    .optional()
    .describe(
      "intermediate CA certificates used to build paths when clients send only their own certificate (not trusted by themselves)",
    ),
  allowNoExtendedKeyUsage: z
    .boolean()
    .default(false)
    .describe("accept a leaf without extendedKeyUsage (default: clientAuth or anyExtendedKeyUsage required)"),
  revocation: z
    .strictObject({
      crlSources: z.array(name).default([]).describe("names of crlSources that may hold the issuer's CRL"),
      useDistributionPoints: z
        .boolean()
        .default(false)
        .describe("also fetch the CRLs named in the certificate's own CRL distribution points"),
      whenUnknown: z
        .enum(["deny", "tempfail", "allow"])
        .default("deny")
        .describe("no usable CRL (missing, stale, bad signature)"),
      staleGraceSeconds: z
        .number()
        .int()
        .min(0)
        .max(30 * 86_400)
        .default(0)
        .describe("keep using a CRL this long past its nextUpdate"),
    })
    .optional()
    .describe("omit to skip revocation checking"),
  allowAuthFallback: name
    .optional()
    .describe(
      "an ldap auth profile: SMTP AUTH is allowed when no certificate is presented, or a valid one maps to no entry",
    ),
  onInvalidCertificate: z
    .enum(["reject", "fallback"])
    .default("reject")
    .describe("fallback: an invalid certificate also leads to SMTP AUTH (needs allowAuthFallback)"),
  maxChainLength: z
    .number()
    .int()
    .min(1)
    .max(16)
    .default(8)
    .describe("most certificates in one presented chain, the leaf included; more is certificate-malformed"),
  maxCertificateBytes: z
    .number()
    .int()
    .min(512)
    .max(64 * 1024)
    .default(16 * 1024)
    .describe("largest certificate accepted, in DER bytes; larger is certificate-malformed"),
  cache: decisionCacheSchema
    .default(cacheOff)
    .describe(
      "reuse of this profile's certificate decisions, by chain, CRL version and profile; never past a certificate's notAfter or a CRL's nextUpdate (off by default)",
    ),
});

export const authProfileSchema = z.discriminatedUnion("type", [ldapAuthProfileSchema, certificateAuthProfileSchema]);

const domain = z
  .string()
  .min(1)
  .max(253)
  .regex(/^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$/, "not a domain name")
  .transform((value) => value.toLowerCase());

export const listenerSchema = z.strictObject({
  authProfile: name.describe("the authProfiles entry that judges this listener's certificates and AUTH (either type)"),
  onAllowanceFailure: z
    .enum(["reject", "allow-temporarily"])
    .default("reject")
    .describe(
      "when the allowance query finds nothing, for a password or a certificate: reject denies; allow-temporarily allows with temporary: true",
    ),
  hostAccessTable: z
    .array(senderGroupSchema)
    .default([])
    .describe("sender groups, first match wins; used by the edge relay"),
  acceptedDomains: z
    .array(domain)
    .default([])
    .describe("domains unauthenticated senders may send to under an accept policy"),
  upstream: z
    .strictObject({
      address: z.union([z.ipv4(), z.ipv6()]).describe("an IP address: nginx does not resolve names"),
      port: z.number().int().min(1).max(65535).describe("its SMTP port (an MTA that takes XCLIENT from nginx)"),
    })
    .optional()
    .describe(
      "where nginx's mail proxy hands a session this listener allowed (GET /v1/nginx/auth/<listener>: Auth-Server, Auth-Port); without it that endpoint answers a temporary failure",
    ),
  bruteForce: bruteForcePolicySchema,
});

export const apiSchema = z
  .strictObject({
    tokens: z.array(secretRef).min(1).max(16).describe("bearer tokens accepted by the API; several for rotation"),
    metricsTokens: z
      .array(secretRef)
      .max(16)
      .default([])
      .describe(
        "bearer tokens that may read GET /metrics and nothing else (a Prometheus scraper need not hold a token that can ask for decisions); the API tokens may read it too",
      ),
    listen: z
      .strictObject({
        host: z.string().min(1).default("127.0.0.1").describe("Node: the address to listen on"),
        port: z.number().int().min(0).max(65535).default(8787).describe("Node: the port; 0 picks a free one"),
      })
      .default({ host: "127.0.0.1", port: 8787 })
      .describe("Node: where the HTTP API listens; a change needs a restart (SIGHUP keeps the old address)"),
    maxBodyBytes: z
      .number()
      .int()
      .min(1024)
      .max(4 * 1024 * 1024)
      .default(64 * 1024)
      .describe("largest request body; a larger one gets 413"),
    headersTimeoutMs: durationMs(10_000, 300_000).describe(
      "Node: a client must send a request's headers within this time, else 408 and close (slow-header clients)",
    ),
    requestTimeoutMs: durationMs(30_000, 600_000).describe(
      "Node: a client must send a whole request (headers and body) within this time, else 408 and close",
    ),
    keepAliveTimeoutMs: durationMs(30_000, 600_000).describe(
      "Node: an idle keep-alive connection is closed after this time (the Keep-Alive header tells clients)",
    ),
    shutdownGraceMs: durationMs(10_000, 600_000).describe(
      "Node: on SIGTERM, decisions in flight may finish for this long before their connections are cut",
    ),
  })
  .superRefine((api, ctx) => {
    if (api.headersTimeoutMs > api.requestTimeoutMs)
      ctx.addIssue({
        code: "custom",
        path: ["headersTimeoutMs"],
        message: "must not be longer than requestTimeoutMs (the headers are part of the request)",
      });
  });

const configShape = z.strictObject({
  directories: z.record(name, directorySchema),
  smtpAuthQueries: z.record(name, smtpAuthQuerySchema).default({}),
  certificateQueries: z.record(name, certificateQuerySchema).default({}),
  crlSources: z.record(name, crlSourceSchema).default({}),
  mailFlowPolicies: z.record(name, mailFlowPolicySchema).default({}),
  authProfiles: z.record(name, authProfileSchema),
  listeners: z.record(name, listenerSchema),
  bruteForceStore: bruteForceStoreSchema,
  api: apiSchema,
  fronts: frontsSchema.describe("protocol fronts served beside the API, deciding in-process (smtpgate serve)"),
});

export const configSchema = configShape.superRefine(checkReferences);

/** The configuration as validated key by key, before the checks across sections (references.ts). */
export type ConfigShape = z.output<typeof configShape>;

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type DirectoryConfig = z.output<typeof directorySchema>;
export type SmtpAuthQueryConfig = z.output<typeof smtpAuthQuerySchema>;
export type CertificateQueryConfig = z.output<typeof certificateQuerySchema>;
export type CrlSourceConfig = z.output<typeof crlSourceSchema>;
export type CertificateAuthProfileConfig = z.output<typeof certificateAuthProfileSchema>;
export type AuthProfileConfig = z.output<typeof authProfileSchema>;
export type ListenerConfig = z.output<typeof listenerSchema>;
export type SecretRef = z.output<typeof secretRef>;
export type DecisionCacheConfig = z.output<typeof decisionCacheSchema>;

/** The published JSON Schema of the configuration file (editors use it for completion and checks). */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
}
