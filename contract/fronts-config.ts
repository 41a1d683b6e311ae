/**
 * Where the protocol fronts listen and which smtpgate listener each decides for: the `fronts:` section of the
 * API's configuration file (served in-process beside the API) and of an edge process's file (`smtpgate fronts`,
 * deciding through the HTTP API). One list per front type; each entry is one socket.
 */
import { z } from "zod";

/** `host:port` (an IPv6 host in brackets) becomes `{host, port}`. */
const tcpAddress = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):[0-9]{1,5}$/, "expected host:port, e.g. 127.0.0.1:12345")
  .transform((text) => {
    const colon = text.lastIndexOf(":");
    return { host: text.slice(0, colon).replace(/^\[(.*)\]$/, "$1"), port: Number(text.slice(colon + 1)) };
  })
  .refine((address) => address.port <= 65535, "the port must be at most 65535")
  .describe("TCP host:port");

/** A unix socket; `mode` is octal text ("0660"), since YAML reads 0660 as the decimal number 660. */
const unixSocket = z.strictObject({
  path: z.string().min(1).max(107).describe("the socket file (a stale one is replaced)"),
  mode: z
    .string()
    .regex(/^0?[0-7]{3}$/, 'expected octal permission bits, e.g. "0660"')
    .default("0660")
    .transform((text) => Number.parseInt(text, 8))
    .describe("the socket file's permission bits"),
});

export const frontListenSchema = z.union([tcpAddress, unixSocket]);

export const dovecotSaslFrontSchema = z.strictObject({
  listen: frontListenSchema.describe('"host:port" or { path, mode }: smtpd_sasl_path = inet:host:port or the path'),
  listener: z.string().min(1).max(64).describe("the smtpgate listener whose auth profile decides"),
});

export const postfixPolicyFrontSchema = z.strictObject({
  listen: frontListenSchema.describe(
    '"host:port" or { path, mode }: check_policy_service inet:host:port or unix:/path (fronts/postfix-policy/)',
  ),
  listener: z.string().min(1).max(64).describe("the smtpgate listener this policy server decides for"),
});

export const frontsSchema = z
  .strictObject({
    dovecotSasl: z
      .array(dovecotSaslFrontSchema)
      .default([])
      .describe("Dovecot authentication protocol sockets (Postfix smtpd_sasl_type = dovecot, Exim driver = dovecot)"),
    postfixPolicy: z
      .array(postfixPolicyFrontSchema)
      .default([])
      .describe(
        "Postfix policy delegation sockets (check_policy_service): certificate relay, allowance per RCPT, sender login",
      ),
  })
  .default({ dovecotSasl: [], postfixPolicy: [] });

export type FrontsConfig = z.output<typeof frontsSchema>;
export type FrontsConfigInput = z.input<typeof frontsSchema>;
export type FrontListen = z.output<typeof frontListenSchema>;
