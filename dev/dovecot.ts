// A private Dovecot (Debian's dovecot-core and dovecot-ldap) that only authenticates: dovecot.conf in a temp dir,
// its own base_dir, state_dir and log file, no mail protocols, `passdb ldap` with auth_bind against a slapd over
// StartTLS, and the auth service on a loopback TCP port (the Dovecot authentication protocol, as Postfix's
// `smtpd_sasl_type = dovecot` speaks it). The system's Dovecot (/etc/dovecot, /run/dovecot) is never read or
// touched. `dovecot -F` runs as a child of this process, killed when it exits; it runs as root, as the tests do
// here: the auth process drops to the `dovecot` user itself.
import { chmod, copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { daemonFolder, startDaemonIn } from "./daemon.ts";
import { freePort } from "./ports.ts";
import type { SlapdInstance } from "./slapd/index.ts";

const DOVECOT = process.env.DOVECOT_BIN || "/usr/sbin/dovecot";

export interface DovecotOptions {
  slapd: SlapdInstance;
  /** Where the users are searched (pass_filter `(uid=%n)`); default the seed's base DN. */
  baseDn?: string;
  /** auth_bind_userdn: bind as this DN template (`uid=%n,ou=...`) instead of searching for the DN first. */
  bindDnTemplate?: string;
  /** auth_cache_size (e.g. "10M"); default 0: no cache, every request reaches the directory. */
  cacheSize?: string;
  /**
   * auth_failure_delay in seconds. Default 0 here, so a test of a wrong password waits about 0.5 s (Dovecot
   * answers failures on a timer) instead of Dovecot's default 2 s; the benchmark sends right passwords only.
   */
  failureDelaySeconds?: number;
}

export interface DovecotInstance {
  /** The auth service's port on 127.0.0.1 (e.g. Postfix's `smtpd_sasl_path = inet:127.0.0.1:PORT`). */
  authPort: number;
  dir: string;
  /** The master's PID while it runs (the auth process is its child). */
  readonly pid: number | undefined;
  /** Dovecot's log so far. */
  log(): Promise<string>;
  /** SIGTERM to the master, wait for it to exit. Idempotent. */
  stop(): Promise<void>;
  /** stop() and remove the folder. Idempotent. */
  close(): Promise<void>;
}

/** dovecot.conf of an auth-only instance in `dir`; exported for its test. */
export function dovecotConf(dir: string, authPort: number, options: DovecotOptions): string {
  return [
    `base_dir = ${join(dir, "run")}`,
    `state_dir = ${join(dir, "state")}`,
    `log_path = ${join(dir, "dovecot.log")}`,
    // No IMAP, POP3 or LMTP: only the auth service (and the master's helpers) run.
    "protocols =",
    "listen = 127.0.0.1",
    "ssl = no",
    "auth_mechanisms = plain login",
    // The client says `secured` after STARTTLS, as Postfix does; plaintext mechanisms need it then.
    "disable_plaintext_auth = yes",
    `auth_cache_size = ${options.cacheSize ?? "0"}`,
    "auth_cache_ttl = 300 s",
    "auth_cache_negative_ttl = 60 s",
    `auth_failure_delay = ${options.failureDelaySeconds ?? 0}`,
    "passdb {",
    "  driver = ldap",
    `  args = ${join(dir, "dovecot-ldap.conf.ext")}`,
    "}",
    // SMTP AUTH looks up no user; Dovecot still wants a userdb.
    "userdb {",
    "  driver = static",
    "  args = uid=dovecot gid=dovecot home=/nonexistent allow_all_users=yes",
    "}",
    "service auth {",
    "  inet_listener {",
    "    address = 127.0.0.1",
    `    port = ${authPort}`,
    "  }",
    "}",
    "",
  ].join("\n");
}

/** The LDAP passdb's settings: StartTLS with the slapd's CA, the DN found by a search or given by a template. */
export function ldapConf(options: DovecotOptions, caFile: string): string {
  const { slapd } = options;
  return [
    `uris = ${slapd.ldapUrl}`,
    "tls = yes",
    `tls_ca_cert_file = ${caFile}`,
    "tls_require_cert = hard",
    `dn = ${slapd.serviceDn}`,
    `dnpass = ${slapd.servicePassword}`,
    "auth_bind = yes",
    ...(options.bindDnTemplate === undefined ? [] : [`auth_bind_userdn = ${options.bindDnTemplate}`]),
    `base = ${options.baseDn ?? slapd.baseDn}`,
    "scope = subtree",
    "pass_filter = (uid=%n)",
    "pass_attrs = uid=user",
    "",
  ].join("\n");
}

/** Starts a private Dovecot; see DovecotOptions. close() it when done. */
export async function startDovecot(options: DovecotOptions): Promise<DovecotInstance> {
  // The auth process runs as `dovecot` and reads the passdb's file (daemonFolder's mode); the master makes
  // base_dir's sockets.
  const folder = await daemonFolder("smtpgate-dovecot-");
  const { dir } = folder;
  await Promise.all([mkdir(join(dir, "run")), mkdir(join(dir, "state"))]);
  const authPort = await freePort();
  const configFile = join(dir, "dovecot.conf");
  await writeFile(configFile, dovecotConf(dir, authPort, options));
  // A copy of the CA the auth process can read (the slapd's PKI folder is private to this user).
  const caFile = join(dir, "ldap-ca.pem");
  await copyFile(options.slapd.pki.caFile, caFile);
  await chmod(caFile, 0o644);
  await writeFile(join(dir, "dovecot-ldap.conf.ext"), ldapConf(options, caFile), { mode: 0o600 });
  const logFile = join(dir, "dovecot.log");
  const log = (): Promise<string> => readFile(logFile, "utf8").catch(() => "");

  const master = await startDaemonIn(
    folder,
    { command: DOVECOT, args: ["-c", configFile, "-F"], port: authPort, what: "Dovecot auth" },
    log,
  );
  return {
    authPort,
    dir,
    get pid() {
      return master.pid;
    },
    log,
    stop: () => master.stop(),
    close: () => master.close(),
  };
}
