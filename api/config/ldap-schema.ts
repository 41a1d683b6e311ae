/**
 * The LDAP part of the configuration: server profiles (directories), SMTP AUTH queries and certificate queries,
 * with the building blocks they share (names, LDAP URLs, filter templates and their tokens, attribute names, the
 * allowance query). api/config/schema.ts assembles the whole file from these.
 */
import { z } from "zod";
import { FilterParser } from "ldapts";
import { nameSchema } from "../../contract/listener-policy.ts";
import { FILTER_TOKENS, templateTokens } from "../core/ldap-filter.ts";
import { secretRef } from "../../lib/config/secret-ref.ts";

export const name = nameSchema;

export const ldapUrl = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return (
      (url.protocol === "ldap:" || url.protocol === "ldaps:") &&
      url.hostname !== "" &&
      url.pathname.replace(/^\/$/, "") === "" &&
      url.search === ""
    );
  } catch {
    return false;
  }
}, "not an ldap:// or ldaps:// URL (scheme, host and optional port only)");

export const durationMs = (fallback: number, max: number) => z.number().int().min(1).max(max).default(fallback);

/**
 * An LDAP filter template with tokens such as `{u}`. Checked at start-up: only known tokens, and it must parse as
 * an RFC 4515 filter once the tokens are filled in.
 */
export const filterTemplate = (allowed: readonly string[]) =>
  z
    .string()
    .min(1)
    .superRefine((template, ctx) => {
      const unknown = templateTokens(template).filter((token) => !allowed.includes(token));
      if (unknown.length > 0) {
        ctx.addIssue({
          code: "custom",
          message: `unknown token ${unknown.map((t) => `{${t}}`).join(", ")} (allowed: ${allowed.map((t) => `{${t}}`).join(" ")})`,
        });
        return;
      }
      if (!parenthesesBalanced(template)) {
        ctx.addIssue({ code: "custom", message: "not a valid LDAP filter: unbalanced parentheses" });
        return;
      }
      try {
        FilterParser.parseString(template.replace(/\{[a-z0-9_]+\}/g, "x"));
      } catch (error) {
        ctx.addIssue({ code: "custom", message: `not a valid LDAP filter: ${(error as Error).message}` });
      }
    });

/** ldapts' parser closes a missing ")" silently; a typo in a filter must not change its meaning unnoticed. */
export function parenthesesBalanced(filter: string): boolean {
  let depth = 0;
  for (let i = 0; i < filter.length; i += 1) {
    const char = filter[i];
    if (char === "\\") i += 2;
    else if (char === "(") depth += 1;
    else if (char === ")" && --depth < 0) return false;
  }
  return depth === 0;
}

/**
 * A DN template with tokens such as `{u}` (`uid={u},ou=people,dc=example,dc=com`): only known tokens, at least
 * one (a fixed DN would bind every user as one entry), and each inside an attribute value, after an `=`.
 */
const dnTemplate = (allowed: readonly string[]) =>
  z
    .string()
    .min(1)
    .max(1024)
    .superRefine((template, ctx) => {
      const tokens = templateTokens(template);
      const unknown = tokens.filter((token) => !allowed.includes(token));
      if (unknown.length > 0)
        ctx.addIssue({
          code: "custom",
          message: `unknown token ${unknown.map((t) => `{${t}}`).join(", ")} (allowed: ${allowed.map((t) => `{${t}}`).join(" ")})`,
        });
      else if (tokens.length === 0)
        ctx.addIssue({ code: "custom", message: "no token: every user would bind as one DN" });
      else if (!/^[A-Za-z][A-Za-z0-9.-]*=/.test(template))
        ctx.addIssue({ code: "custom", message: "not a DN: it must start with attribute=value" });
    });

export const dn = z.string().min(1).max(1024).describe("A distinguished name (RFC 4514)");

export const attributeName = z.string().regex(/^[A-Za-z][A-Za-z0-9-]*$/, "not an attribute name");

export const userIdAttribute = attributeName
  .default("uid")
  .describe(
    "its value is the identity of every allow, whatever the client typed (AD: sAMAccountName); an entry without it, or with several values, is refused",
  );

export const addressAttributes = z
  .array(attributeName)
  .max(16)
  .default(["mail"])
  .describe(
    "attributes holding the envelope senders the identity owns, returned with an allow as `addresses` (e.g. [mail, mailAlternateAddress]; AD: proxyAddresses, of which only smtp: values count); [] = none (addresses: null)",
  );

/** The group gate both ways in can share: a filter that must find an entry for the identity to be allowed. */
export const allowanceSchema = z
  .strictObject({
    filter: filterTemplate(FILTER_TOKENS.allowance).describe(
      "must find at least one entry for the user to be allowed; {u} is the identity (the user ID attribute's value), {dn} the entry's DN",
    ),
    baseDn: dn.optional().describe("default: the query's baseDn"),
  })
  .describe("the allowance query; when it finds nothing, the listener's onAllowanceFailure decides");

export const directorySchema = z
  .strictObject({
    hosts: z.array(ldapUrl).min(1).max(16).describe("LDAP servers, tried in order (failover) or spread (loadbalance)"),
    mode: z
      .enum(["failover", "loadbalance"])
      .default("failover")
      .describe("failover: one active host, the next on failure; loadbalance: the starting host rotates per operation"),
    failbackAfterMs: durationMs(60_000, 86_400_000).describe(
      "failover: go back to the first host this long after leaving it",
    ),
    hostDownForMs: durationMs(30_000, 86_400_000).describe("loadbalance: skip a host this long after it failed"),
    startTls: z.boolean().default(true).describe("ldap:// hosts: upgrade with StartTLS before any bind (default true)"),
    allowPlaintext: z
      .boolean()
      .default(false)
      .describe("permit startTls: false on ldap:// hosts: passwords cross the network in clear; tests only"),
    tls: z
      .strictObject({
        caFile: z
          .string()
          .min(1)
          .optional()
          .describe("PEM bundle of CAs trusted for the directory's certificate (default: the system store)"),
        serverName: z
          .string()
          .min(1)
          .optional()
          .describe("name checked against the directory's certificate (default: the host of each URL)"),
      })
      .default({})
      .describe("TLS towards the directory (ldaps:// and StartTLS)"),
    bind: z
      .strictObject({ dn, password: secretRef })
      .optional()
      .describe("service identity for searches; omit for anonymous searches"),
    baseDn: dn,
    connectTimeoutMs: durationMs(3_000, 60_000).describe(
      "TCP connect timeout; opening and securing a connection must finish within connectTimeoutMs + operationTimeoutMs",
    ),
    operationTimeoutMs: durationMs(3_000, 60_000).describe(
      "each LDAP operation, the wait for a free pooled connection included; sent as the search time limit (whole seconds)",
    ),
    maxConnections: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .default(16)
      .describe("per host, service and user-bind connections each (a service connection carries up to 8 searches)"),
  })
  .superRefine((directory, ctx) => {
    const plain = directory.hosts.findIndex((host) => host.startsWith("ldap:"));
    if (plain >= 0 && !directory.startTls && !directory.allowPlaintext) {
      ctx.addIssue({
        code: "custom",
        path: ["hosts", plain],
        message:
          "ldap:// without StartTLS sends passwords in clear: set startTls: true or use ldaps:// (or allowPlaintext: true for tests)",
      });
    }
  });

export const smtpAuthQuerySchema = z
  .strictObject({
    directory: name.describe("the LDAP server profile to ask"),
    baseDn: dn.optional().describe("search base (default: the directory's baseDn)"),
    filter: filterTemplate(FILTER_TOKENS.user)
      .default("(uid={u})")
      .describe("finds the user's entry; AD: (sAMAccountName={u})"),
    method: z
      .enum(["bind", "password-attribute"])
      .default("bind")
      .describe(
        "bind: search the entry, then bind as its DN with the password; password-attribute: read passwordAttribute and compare locally",
      ),
    bindDnTemplate: dnTemplate(FILTER_TOKENS.bindDn)
      .optional()
      .describe(
        "method bind: bind as this DN (e.g. uid={u},ou=people,dc=example,dc=com; each value RFC 4514-escaped) and read the entry there at the same time, without a search first; filter is not used. Only where every user's DN follows from the name typed",
      ),
    userIdAttribute,
    addressAttributes,
    passwordAttribute: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9-]*(;[A-Za-z0-9-]+)*$/, "not an attribute name")
      .default("userPassword")
      .describe(
        "password-attribute only: the attribute holding the hashed password; the service identity must be able to read it",
      ),
    allowPlaintextPasswords: z
      .boolean()
      .default(false)
      .describe("password-attribute: also accept values stored without a {SCHEME} prefix"),
    allowance: allowanceSchema.optional(),
  })
  .superRefine((query, ctx) => {
    if (query.bindDnTemplate !== undefined && query.method !== "bind")
      ctx.addIssue({
        code: "custom",
        path: ["bindDnTemplate"],
        message: "needs method: bind (a DN template is where the user binds)",
      });
  });

export const certificateQuerySchema = z.strictObject({
  directory: name.describe("the LDAP server profile to ask"),
  baseDn: dn.optional().describe("search base (default: the directory's baseDn)"),
  filter: filterTemplate(FILTER_TOKENS.certificate).describe(
    "finds the entry of the certificate's owner, e.g. (&(objectClass=inetOrgPerson)(mail={email}))",
  ),
  userIdAttribute,
  addressAttributes,
  matchUserCertificate: z
    .boolean()
    .default(false)
    .describe("also require the presented leaf to equal one of the entry's userCertificate;binary values"),
  allowance: allowanceSchema
    .optional()
    .describe(
      "the same group gate as an SMTP AUTH query's, so a certificate is refused like a password; the listener's onAllowanceFailure decides when it finds nothing",
    ),
});
