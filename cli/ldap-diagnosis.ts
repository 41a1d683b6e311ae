/**
 * What went wrong between smtpgate and a directory host, and the configuration key that fixes it: the common
 * failures of a first deployment (wrong service password, a CA bundle that does not fit, the wrong name in the
 * server's certificate, a base DN that is not there, a firewall) each name the key to change.
 */
import { ResultCodeError } from "ldapts";
import type { DirectoryConfig } from "../api/config/schema.ts";
import { describe } from "../api/ldap/operations.ts";

export interface Diagnosis {
  /** The host could not be reached at all (what the API turns into a tempfail until it comes back). */
  unreachable: boolean;
  /** What happened, one line. */
  what: string;
  /** What to change, naming the configuration key. */
  fix: string;
}

export interface DiagnosisContext {
  directory: string;
  config: DirectoryConfig;
  host: string;
  /** The base DN searched and the key that set it, when the failure was a search's. */
  search?: { baseDn: string; key: string };
}

/** Node's codes for a server certificate that does not chain to the trusted CAs. */
const UNTRUSTED_CERTIFICATE = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
]);
const UNREACHABLE = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT"]);

export function diagnose(error: unknown, context: DiagnosisContext): Diagnosis {
  const key = `directories.${context.directory}`;
  // ldapts' messages for result codes are often empty ("( Code: 0x20)"); its error class names the result.
  const what =
    error instanceof ResultCodeError
      ? `LDAP result ${error.code} (${error.name.replace(/Error$/, "")})`
      : describe(error);
  const code = (error as { code?: unknown }).code;
  const problem = (fix: string): Diagnosis => ({ unreachable: false, what, fix });

  if (error instanceof ResultCodeError) {
    switch (error.code) {
      case 49:
        return problem(
          context.config.bind
            ? `the service bind was refused: ${key}.bind.dn (${context.config.bind.dn}) or the secret in $${context.config.bind.password.env} is wrong`
            : `the server refused the anonymous bind: set ${key}.bind.dn and ${key}.bind.password`,
        );
      case 32:
        return problem(
          context.search
            ? `${context.search.key}: ${context.search.baseDn} does not exist on this server`
            : "an entry named in the request does not exist",
        );
      case 50:
        return problem(
          `the service identity may not read ${context.search?.baseDn ?? "this entry"}: grant ${context.config.bind?.dn ?? "anonymous"} read access, or fix ${key}.bind.dn`,
        );
      case 13:
      case 8:
        return problem(`the server wants a protected connection: use ldaps:// or ${key}.startTls: true`);
      case 48:
      case 53:
        return problem(
          context.config.bind
            ? `the server refuses this bind: check ${key}.bind.dn and that the account is enabled`
            : `the server refuses anonymous access: set ${key}.bind.dn and ${key}.bind.password`,
        );
      case 2:
        return problem(
          `the server did not accept the request (StartTLS not offered?): enable TLS on the server, or use an ldaps:// URL in ${key}.hosts`,
        );
      default:
        return problem(`see the LDAP result code in the server's documentation (RFC 4511 appendix A)`);
    }
  }
  if (typeof code === "string" && UNTRUSTED_CERTIFICATE.has(code))
    return problem(
      context.config.tls.caFile
        ? `the directory's certificate is not issued by a CA in ${key}.tls.caFile (${context.config.tls.caFile}): put the CA that signed it there`
        : `the directory's certificate is not issued by a CA in the system store: set ${key}.tls.caFile to the CA that signed it`,
    );
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    const names = String((error as { cert?: { subjectaltname?: string } }).cert?.subjectaltname ?? "");
    return problem(
      `the directory's certificate is not for ${context.config.tls.serverName ?? new URL(context.host).hostname}${names ? ` (it names ${names})` : ""}: set ${key}.tls.serverName to a name it carries, or use that name in ${key}.hosts`,
    );
  }
  if (code === "CERT_HAS_EXPIRED" || code === "CERT_NOT_YET_VALID")
    return problem("the directory's certificate is outside its validity period: renew it on the server");
  if (code === "EPROTO" || code === "ECONNRESET" || code === "ERR_SSL_WRONG_VERSION_NUMBER")
    return problem(
      `the TLS handshake failed: ldaps:// needs the server's TLS port (636), ldap:// its plain port (389, with StartTLS); check ${key}.hosts`,
    );
  if (typeof code === "string" && UNREACHABLE.has(code))
    return {
      unreachable: true,
      what,
      fix:
        code === "ENOTFOUND" || code === "EAI_AGAIN"
          ? `the host name does not resolve: check ${key}.hosts`
          : `nothing answers at ${context.host}: check ${key}.hosts, the server, and the firewall`,
    };
  if (/timed? ?out/i.test(what))
    return {
      unreachable: true,
      what,
      fix: `no answer in time: check ${key}.hosts and the firewall, or raise ${key}.connectTimeoutMs / operationTimeoutMs (${context.config.connectTimeoutMs} / ${context.config.operationTimeoutMs} ms)`,
    };
  return problem(`check ${key} against the server's settings`);
}
