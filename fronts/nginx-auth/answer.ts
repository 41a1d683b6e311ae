/**
 * The answer nginx's mail proxy reads (ngx_mail_auth_http_process_headers in ngx_mail_auth_http_module.c): only
 * headers count, the status line and the body are ignored, and the whole head must fit nginx's 1 KiB buffer.
 *
 *   allowed:  Auth-Status: OK, Auth-Server (an IP: nginx does not resolve names), Auth-Port, and Auth-User, which
 *             replaces the login nginx hands the upstream (XCLIENT LOGIN=) with the identity the directory gave
 *   refused:  Auth-Status: <text>, Auth-Error-Code: <code> <enhanced>; nginx answers the client "<code> <text>".
 *             With Auth-Wait: N it waits N seconds, answers and lets the client try again; without, it answers
 *             and closes the connection.
 */
import type { SmtpReply } from "../../contract/smtp-replies.ts";

export type AnswerHeaders = Record<string, string>;

export interface Upstream {
  /** An IP address. */
  address: string;
  port: number;
}

/** Seconds nginx waits before it gives a refusal and reads the client's next command. */
export const REFUSAL_WAIT_SECONDS = 1;
/** The longest wait asked of nginx: it holds the client's connection all that time. */
export const MAX_WAIT_SECONDS = 30;

/** Hand the session to `upstream`, as `identity` when the decision named one. */
export function allowed(upstream: Upstream, identity: string | null): AnswerHeaders {
  return {
    "Auth-Status": "OK",
    "Auth-Server": upstream.address,
    "Auth-Port": String(upstream.port),
    ...(identity === null ? {} : { "Auth-User": xtext(identity) }),
  };
}

/**
 * Refuse with `reply`. `close`: nginx closes after the reply (no Auth-Wait), as the verdict asks for a refused
 * certificate; otherwise it waits `waitSeconds` (capped), which slows password guessing down.
 */
export function refused(
  reply: SmtpReply,
  options: { close?: boolean; waitSeconds?: number | null } = {},
): AnswerHeaders {
  const wait = Math.min(Math.max(options.waitSeconds ?? REFUSAL_WAIT_SECONDS, 1), MAX_WAIT_SECONDS);
  return {
    "Auth-Status": reply.text,
    "Auth-Error-Code": `${reply.code} ${reply.enhanced}`,
    ...(options.close ? {} : { "Auth-Wait": String(wait) }),
  };
}

/**
 * RFC 3461 §4 xtext, what XCLIENT attribute values are (Postfix XCLIENT_README): nginx copies Auth-User into
 * `XCLIENT LOGIN=` as it is, so an identity with a space or "=" would otherwise add attributes of its own.
 */
export function xtext(value: string): string {
  let encoded = "";
  for (const byte of new TextEncoder().encode(value)) {
    encoded +=
      byte >= 0x21 && byte <= 0x7e && byte !== 0x2b && byte !== 0x3d
        ? String.fromCharCode(byte)
        : `+${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return encoded;
}
