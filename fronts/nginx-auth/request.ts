/**
 * nginx's `auth_http` request (ngx_mail_auth_http_module.c, nginx 1.22) read into the facts of a decision request.
 * nginx sends a GET with one header per fact; the ones read here:
 *
 *   Auth-Method       plain | login | apop | cram-md5 | external | none (nginx says "plain" for LOGIN as well)
 *   Auth-User/-Pass   escaped with NGX_ESCAPE_MAIL_AUTH: "%XX" for the controls, space and "%" only
 *   Auth-Protocol     smtp | imap | pop3
 *   Client-IP         the client's address;  Auth-SMTP-Helo  its HELO (sent with Auth-Method: none only)
 *   Auth-SSL          "on" over TLS, with Auth-SSL-Protocol and Auth-SSL-Cipher
 *   Auth-SSL-Verify   with ssl_verify_client set: SUCCESS, NONE (no certificate) or FAILED:<why>
 *   Auth-SSL-Cert     with auth_http_pass_client_cert on: the client's own certificate as escaped PEM, no chain
 *
 * Auth-SSL-Subject, -Issuer, -Serial and -Fingerprint are nginx's reading of that certificate; smtpgate reads the
 * certificate itself and validates it with the profile's anchors, intermediates and CRLs, as /v1/decide/tls does.
 */

/** How a header is read: its value, or undefined when nginx did not send it. */
export type HeaderReader = (name: string) => string | undefined;

export interface NginxRequestFacts {
  method: string;
  protocol: string;
  client: { ip: string; helo?: string };
  tls: { version: string; cipher: string } | null;
  /** base64 DER of the client's certificate, or null when it presented none. */
  certificate: string | null;
}

/** What the request lacks or holds that makes a decision impossible; logged, answered with a tempfail. */
export interface NginxRequestProblem {
  problem: string;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });
const HEX_PAIR = /^[0-9A-Fa-f]{2}$/;
const PEM_CERTIFICATE = /^-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END CERTIFICATE-----\r?\n?$/;

/**
 * Undoes NGX_ESCAPE_MAIL_AUTH: "%XX" back to its byte, then UTF-8. nginx escapes every "%" it sends, so a "%" is
 * always an escape; header values reach us one character per byte (HTTP headers are bytes: Node and workerd give
 * them as latin1). Null when the bytes are not UTF-8: such a password is refused, never guessed at.
 */
export function decodeMailAuthText(value: string): string | null {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i += 1) {
    const code = value.charCodeAt(i);
    if (code > 0xff) return null;
    if (code === 0x25 && HEX_PAIR.test(value.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(code);
  }
  try {
    return UTF8.decode(new Uint8Array(bytes));
  } catch {
    return null;
  }
}

/** The base64 DER of the one certificate in an escaped PEM, or null when it is not exactly one PEM certificate. */
export function certificateFromEscapedPem(value: string): string | null {
  const pem = decodeMailAuthText(value);
  const body = pem === null ? null : PEM_CERTIFICATE.exec(pem)?.[1];
  return body ? body.replace(/[\r\n]/g, "") : null;
}

/** The facts of nginx's request, or why they cannot be had. */
export function readNginxRequest(header: HeaderReader): NginxRequestFacts | NginxRequestProblem {
  const tls =
    header("Auth-SSL") === "on"
      ? { version: header("Auth-SSL-Protocol") ?? "", cipher: header("Auth-SSL-Cipher") ?? "" }
      : null;
  const escapedPem = header("Auth-SSL-Cert");
  let certificate: string | null = null;
  if (escapedPem !== undefined && escapedPem !== "") {
    certificate = certificateFromEscapedPem(escapedPem);
    if (certificate === null) return { problem: "Auth-SSL-Cert is not one PEM certificate" };
  } else if (tls && !["", "NONE", undefined].includes(header("Auth-SSL-Verify"))) {
    // The client presented a certificate that nginx did not pass on: deciding without it would let a password
    // stand in for a certificate the profile should judge (a revoked one, say).
    return {
      problem: "the client presented a certificate but nginx sent no Auth-SSL-Cert: set auth_http_pass_client_cert on",
    };
  }
  const helo = header("Auth-SMTP-Helo");
  return {
    // Cut: both may be quoted in a log line.
    method: (header("Auth-Method") ?? "").toLowerCase().slice(0, 32),
    protocol: (header("Auth-Protocol") ?? "").toLowerCase().slice(0, 32),
    client: { ip: header("Client-IP") ?? "", ...(helo ? { helo } : {}) },
    tls,
    certificate,
  };
}
