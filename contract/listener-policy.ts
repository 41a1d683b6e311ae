/**
 * What a relay (or any front that applies mail-flow policy) needs of a listener, `GET /v1/listeners/{name}`: the
 * host access table, the mail-flow policies it points at, the accepted domains and what the auth profile offers.
 * The API's config validates with these schemas and the relay parses the document with them.
 */
import { z } from "zod";

/** The name of a listener, profile, policy or any other configured object. */
export const nameSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
    "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
  );

/**
 * A mail-flow policy (AsyncOS's name): what a sender group may do. The relay enforces it; the predefined relay
 * policy of the appliance ("RELAYED") is simply a policy with `behaviour: relay` here.
 */
export const mailFlowPolicySchema = z.strictObject({
  behaviour: z
    .enum(["accept", "relay", "reject", "tcprefuse"])
    .describe(
      "relay: may send anywhere; accept: only to acceptedDomains unless authenticated; reject: 554 at connect; tcprefuse: close at once",
    ),
  tls: z
    .enum(["off", "preferred", "required"])
    .default("preferred")
    .describe("preferred: STARTTLS offered; required: MAIL before STARTTLS gets 530 5.7.0"),
  verifyClientCertificate: z
    .boolean()
    .default(false)
    .describe("ask for a client certificate at STARTTLS and have the API judge it"),
  smtpAuth: z
    .enum(["off", "preferred", "required"])
    .default("off")
    .describe("required: no mail without authentication (by certificate or AUTH)"),
  requireTlsToOfferAuth: z.boolean().default(true).describe("offer AUTH only after STARTTLS (538 5.7.11 before)"),
  senderLogin: z
    .enum(["off", "warn", "enforce"])
    .default("off")
    .describe(
      "bind the envelope sender to the login: enforce answers 553 5.7.1 at MAIL FROM for an address the identity does not own; warn only logs",
    ),
  maxMessageBytes: z
    .number()
    .int()
    .min(1024)
    .max(1024 * 1024 * 1024)
    .default(10 * 1024 * 1024)
    .describe("largest message; a larger one gets 552 5.3.4 and nothing is delivered"),
  maxRecipients: z
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(100)
    .describe("recipients per message; the next one gets 452 4.5.3"),
  maxConnectionsPerClient: z
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(20)
    .describe("concurrent connections from one IP address"),
});

const cidr = z.union([z.cidrv4(), z.cidrv6(), z.ipv4(), z.ipv6()], { error: "not an IP address or CIDR block" });

/** A sender group: a row of the host access table, matched top-down by client IP, first match wins. */
export const senderGroupSchema = z.strictObject({
  name: z.string().min(1).max(64).describe("the sender group's name, logged as the connection's range"),
  match: z.array(cidr).min(1).max(10_000).describe("client IP addresses and CIDR blocks (IPv4 and IPv6)"),
  policy: nameSchema.describe("the mail-flow policy for this group"),
});

export type MailFlowPolicy = z.output<typeof mailFlowPolicySchema>;
export type SenderGroup = z.output<typeof senderGroupSchema>;

export const listenerPolicySchema = z.object({
  listener: z.string(),
  authProfile: z.object({
    name: z.string(),
    type: z.enum(["ldap", "certificate"]),
    allowAuthFallback: z.boolean().describe("AUTH may be offered (always true for ldap profiles)"),
  }),
  hostAccessTable: z.array(senderGroupSchema),
  mailFlowPolicies: z.record(z.string(), mailFlowPolicySchema),
  acceptedDomains: z.array(z.string()),
});

export type ListenerPolicy = z.output<typeof listenerPolicySchema>;
