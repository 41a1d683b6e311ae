// Where the OpenLDAP programs and files are: Debian's paths (/usr/sbin/slapd, /usr/lib/ldap, /etc/ldap/schema),
// with overrides through SLAPD_BIN, SLAPADD_BIN, SLAPPASSWD_BIN, SLAPD_MODULE_PATH and SLAPD_SCHEMA_DIR.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";

function tool(envName: string, name: string): string {
  const fromEnv = process.env[envName];
  if (fromEnv) return fromEnv;
  const sbin = `/usr/sbin/${name}`;
  return existsSync(sbin) ? sbin : name;
}

export const SLAPD = tool("SLAPD_BIN", "slapd");
export const SLAPADD = tool("SLAPADD_BIN", "slapadd");
export const SLAPPASSWD = tool("SLAPPASSWD_BIN", "slappasswd");
export const MODULE_PATH = process.env.SLAPD_MODULE_PATH || "/usr/lib/ldap";
export const SCHEMA_DIR = process.env.SLAPD_SCHEMA_DIR || "/etc/ldap/schema";

export const execFileAsync = promisify(execFile);
