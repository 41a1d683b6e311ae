/**
 * What an operator should do about a directory host that failed, in words that name the configuration key to
 * change: the start-up probe logs it beside the failure.
 *
 *   service bind as cn=smtpgate,... refused: invalid credentials (49)
 *     → check directories.corp.bind.dn and the password in SMTPGATE_LDAP_BIND_PASSWORD
 */
import type { DirectoryConfig } from "../config/schema.ts";
import type { HostEndpoint } from "./connection.ts";
import { DeadlineExceeded } from "../../lib/deadline.ts";
import { ServiceBindRefused } from "./operations.ts";

export interface FailedHost {
  directory: string;
  config: DirectoryConfig;
  index: number;
  endpoint: HostEndpoint;
}

/** Node's codes for a certificate the TLS client would not accept. */
const CERTIFICATE_CODES = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS|ERR_SSL/;

export function fixFor(error: unknown, host: FailedHost): string {
  const at = `directories.${host.directory}`;
  const hostKey = `${at}.hosts[${host.index}]`;
  const { host: name, port } = host.endpoint;
  const code = typeof (error as { code?: unknown })?.code === "string" ? (error as { code: string }).code : "";
  const message = error instanceof Error ? error.message : String(error);

  if (error instanceof ServiceBindRefused) {
    const secret = host.config.bind ? ` and the password in ${host.config.bind.password.env}` : "";
    return error.resultCode === 49
      ? `check ${at}.bind.dn${secret}`
      : `the directory refuses the service identity: check ${at}.bind and the account's state on the server`;
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID" || /altnames|does not match certificate/i.test(message))
    return `the directory's certificate does not carry the name ${host.config.tls.serverName ?? name}: set ${at}.tls.serverName to a name it carries, or put that name in ${hostKey}`;
  if (CERTIFICATE_CODES.test(code) || /certificate/i.test(message))
    return host.config.tls.caFile === undefined
      ? `the system store does not trust the directory's certificate: set ${at}.tls.caFile to the CA that signed it`
      : `${at}.tls.caFile (${host.config.tls.caFile}) does not hold the CA that signed the directory's certificate`;
  if (code === "ECONNREFUSED")
    return `nothing listens on ${name}:${port}: check ${hostKey} and that the LDAP server runs`;
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return `${name} does not resolve: check ${hostKey} and DNS`;
  if (error instanceof DeadlineExceeded || code === "ETIMEDOUT" || /timed? ?out/i.test(message))
    return `no answer from ${name}:${port} within ${at}.connectTimeoutMs/operationTimeoutMs: check ${hostKey}, the firewall and the server`;
  if (code === "ECONNRESET" || code === "EPIPE")
    return `${name}:${port} closed the connection: check that ${hostKey} speaks ${host.endpoint.secure ? "LDAPS" : "LDAP"} on that port`;
  return `check ${hostKey} and the server's log`;
}
