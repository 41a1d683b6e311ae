/**
 * The verdict: what every decision answers, over HTTP or in-process. A decision is always a verdict, never an
 * exception; the reason says why, and `smtp` is the exact reply to give (null for `continue`: no reply is due, the
 * session goes on and AUTH is offered). This zod schema is the one description of it: the API emits it, the relay
 * and every front parse with it (unknown fields are dropped, so a relay keeps working against a newer API), and the OpenAPI
 * document is generated from it.
 */
import { z } from "zod";

export const VERDICTS = ["allow", "deny", "tempfail", "continue"] as const;
export type VerdictKind = (typeof VERDICTS)[number];

export const METHODS = ["certificate", "ldap-bind", "ldap-password"] as const;
export type Method = (typeof METHODS)[number];

/** Why a decision came out as it did. Logged, and returned to the caller; never shown to the SMTP client. */
export const REASONS = [
  "ok",
  "empty-password",
  "malformed-username",
  "authzid-not-permitted",
  "invalid-credentials",
  "no-such-user",
  "ambiguous-user",
  "unsupported-password-scheme",
  "allowance-failed",
  "directory-unavailable",
  "rate-limited",
  "auth-not-offered",
  "already-authenticated",
  "certificate-not-used",
  "certificate-missing",
  "certificate-malformed",
  "certificate-untrusted",
  "certificate-expired",
  "certificate-not-yet-valid",
  "certificate-usage",
  "certificate-critical-extension",
  "certificate-revoked",
  "certificate-revocation-unknown",
  "certificate-unmapped",
  "certificate-ambiguous",
] as const;
export type Reason = (typeof REASONS)[number];

export const smtpReplySchema = z.strictObject({
  code: z.number().int().min(200).max(599).describe("the SMTP reply code, e.g. 235"),
  enhanced: z.string().max(16).describe("the RFC 3463 enhanced status code, e.g. 2.7.0"),
  text: z.string().max(512).describe("the reply text; never says which of user name or password was wrong"),
});

export const verdictSchema = z.object({
  verdict: z.enum(VERDICTS).describe("continue: no decision yet, offer AUTH"),
  authenticated: z.boolean(),
  method: z.enum(METHODS).nullable(),
  identity: z
    .string()
    .nullable()
    .describe(
      "the session identity: the user ID attribute of the entry found (by password or certificate), never the name as typed",
    ),
  dn: z.string().nullable(),
  temporary: z
    .boolean()
    .describe("the allowance query failed and the listener allows temporarily: mark every later log line"),
  reason: z.enum(REASONS),
  retryAfter: z.number().int().nullable().describe("seconds until a rate-limited client may try again; null otherwise"),
  addresses: z
    .array(z.string())
    .nullable()
    .describe(
      "with an allow: the envelope sender addresses the identity owns (the entry's address attributes), for senderLogin; null when not configured",
    ),
  smtp: smtpReplySchema.nullable().describe("the exact reply to give; null for continue"),
  close: z.boolean().describe("close the connection after the reply"),
  profile: z.string(),
  decisionId: z.string(),
});

export type Verdict = z.output<typeof verdictSchema>;
