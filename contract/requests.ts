/**
 * The request bodies of the decision API, validated with zod; these schemas are also the source of the OpenAPI
 * document. Length limits here only bound the work per call: what a valid user name is, is the core's
 * business (a 10 kB user name is a `deny`, not a malformed call).
 */
import { z } from "zod";

const MAX_TEXT = 16 * 1024;

/**
 * A field a client may lack: absent and null mean the same (most callers map "none" to null), and the decision
 * sees neither, only `undefined`.
 */
function lacking<S extends z.ZodType>(schema: S) {
  return schema
    .nullish()
    .transform((value) => value ?? undefined)
    .describe(`${schema.description ?? ""}; absent or null when there is none`.replace(/^; /, ""));
}

export const clientSchema = z.strictObject({
  ip: z.union([z.ipv4(), z.ipv6()]).describe("the SMTP client's IP address"),
  helo: lacking(z.string().max(1024).describe("the EHLO/HELO name it gave")),
});

export const tlsSchema = z.strictObject({
  version: z.string().max(32).describe("e.g. TLSv1.3"),
  cipher: z.string().max(256),
  sni: lacking(z.string().max(256).describe("the server name the client asked for")),
});

/** Caps here only bound the work of one call; certificate size and chain length limits are the profile's. */
export const certificateSchema = z.strictObject({
  chain: z
    .array(z.string().max(4 * 1024 * 1024))
    .max(100)
    .describe("base64 DER certificates, leaf first"),
});

export const tlsRequestSchema = z.strictObject({
  listener: z.string().min(1).max(64),
  session: z.string().max(128).optional().describe("the relay's session id, for log correlation"),
  client: clientSchema,
  tls: tlsSchema,
  certificate: certificateSchema.nullable().describe("null when the client presented no certificate"),
});

export const authRequestSchema = z.strictObject({
  listener: z.string().min(1).max(64),
  session: z.string().max(128).optional().describe("the relay's session id, for log correlation"),
  client: clientSchema,
  tls: tlsSchema.nullable().optional(),
  mechanism: z.enum(["PLAIN", "LOGIN"]),
  username: z.string().max(MAX_TEXT),
  password: z.string().max(MAX_TEXT),
  authzid: lacking(z.string().max(MAX_TEXT).describe("the SASL authorization identity")),
  certificate: certificateSchema
    .nullable()
    .optional()
    .describe("the certificate presented at STARTTLS, for certificate profiles with AUTH fallback"),
});

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * A client certificate an MTA has verified against its own trust anchors, as the facts it passes on (Postfix's
 * `ccert_*` policy attributes): no DER and no chain, so neither path validation nor a revocation check can be
 * done here. Each fact fills the certificate query's token of the same meaning; a token the facts lack fails closed.
 */
export const verifiedCertificateSchema = z.strictObject({
  sha256: lacking(z.string().regex(SHA256_HEX, "not 64 lower-case hex digits").describe("{fp_sha256}")),
  spkiSha256: lacking(
    z.string().regex(SHA256_HEX, "not 64 lower-case hex digits").describe("{spki_sha256}: of the public key"),
  ),
  subjectCn: lacking(z.string().min(1).max(1024).describe("{cn}: the subject's common name")),
  issuerCn: lacking(z.string().min(1).max(1024).describe("{issuer_cn}: the issuer's common name")),
});

export const certificateFactsRequestSchema = z.strictObject({
  listener: z.string().min(1).max(64),
  session: z.string().max(128).optional().describe("the front's session id, for log correlation"),
  client: clientSchema,
  certificate: verifiedCertificateSchema.describe("what the MTA that verified the certificate says about it"),
});

/** An identity an MTA has already authenticated (Postfix's `sasl_username`): is it allowed, and what does it own? */
export const identityRequestSchema = z.strictObject({
  listener: z.string().min(1).max(64),
  session: z.string().max(128).optional().describe("the front's session id, for log correlation"),
  client: clientSchema,
  identity: z.string().max(MAX_TEXT).describe("the login as the MTA authenticated it"),
});

export type AuthRequestBody = z.output<typeof authRequestSchema>;
export type TlsRequestBody = z.output<typeof tlsRequestSchema>;
export type CertificateFactsRequestBody = z.output<typeof certificateFactsRequestSchema>;
export type IdentityRequestBody = z.output<typeof identityRequestSchema>;

/** POST /v1/cache/flush: one auth profile's cached decisions, or (no body, or no profile) every profile's. */
export const cacheFlushRequestSchema = z.strictObject({
  profile: z.string().min(1).max(64).optional().describe("the auth profile whose cache to empty; absent: all"),
});

/**
 * POST /v1/users/flush: after a password change (or to lift a block), drop one user's cached SMTP AUTH decisions and
 * brute-force blocks and trust, on every replica that shares the brute-force store.
 */
export const userFlushRequestSchema = z.strictObject({
  user: z
    .string()
    .min(1)
    .max(256)
    .describe("the user's identity (the user ID attribute's value) or the name they type; trimmed and lower-cased"),
});

export const addressClearRequestSchema = z.strictObject({
  address: z
    .union([z.ipv4(), z.ipv6()])
    .describe("a client address; its address bucket is emptied at each listener's prefix length (e.g. its /64)"),
});
