// A private Exim instance: the exim4 binary scripts/setup-exim.sh unpacked into .toolchain/exim/ (Exim is not
// installed: as a Debian package it conflicts with Postfix), a configuration file, spool and log folder in a temp
// dir, one daemon on an unprivileged loopback port. The daemon runs in the foreground (`-bdf`) as a child of this
// process, so that it is killed when the tests exit, and is stopped by its PID. Started by root with `-C`, Exim
// drops root for good and runs as its `exim_user` (`nobody` here: the Debian-exim user of the package's build is
// not made), which must own the spool and the log folder and read the TLS key.
import { existsSync } from "node:fs";
import { chmod, chown, copyFile, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { daemonFolder, readLog, startDaemonIn, waitForMatch } from "../daemon.ts";
import { freePort } from "../ports.ts";
import { execFileAsync } from "../slapd/tools.ts";

/** Where scripts/setup-exim.sh puts the binary; EXIM_BIN overrides it. */
export const EXIM =
  process.env.EXIM_BIN || fileURLToPath(new URL("../../.toolchain/exim/usr/sbin/exim4", import.meta.url));
const EXIM_USER = process.env.EXIM_USER || "nobody";
const READY_TIMEOUT_MS = 15_000;

export interface EximOptions {
  /** The `begin authenticators` section's text (without that line). */
  authenticators: string;
  /** Deliver every accepted message to 127.0.0.1:PORT (e.g. a dev/sink.ts sink); default: keep it queued. */
  relayPort?: number;
  /** The daemon's certificate and key: STARTTLS is then offered to every client. */
  tls?: { certFile: string; keyFile: string };
}

export interface EximInstance {
  /** The daemon's port on 127.0.0.1. */
  port: number;
  /** The instance's folder: exim.conf, spool/, log/ (mainlog, rejectlog, paniclog), tls/. */
  dir: string;
  configFile: string;
  /** The exim_user's uid and gid, which the daemon and its session processes run as. */
  uid: number;
  gid: number;
  /** The daemon's PID while it runs. */
  readonly pid: number | undefined;
  /** The mainlog so far: the daemon's and the SMTP sessions' lines (a reception: `<=`, with `A=` after AUTH). */
  mainlog(): string;
  /**
   * What the daemon's children wrote to stderr. A delivery runs in an Exim that the daemon executes again with
   * `-C`; not being a trusted configuration, that Exim logs to stderr, not to the mainlog (its `=>` and `Completed`
   * lines are here).
   */
  stderr(): string;
  /** Waits until `pattern` appears in the mainlog or stderr() (default 5 s) and returns the match. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** SIGTERM to the daemon, wait for it to exit. Idempotent. */
  stop(): Promise<void>;
  /** stop() and remove the folder. Idempotent. */
  close(): Promise<void>;
}

/** Why Exim cannot run here (no unpacked binary), or undefined when it can. */
export function eximMissing(): string | undefined {
  if (existsSync(EXIM)) return undefined;
  return `no Exim binary at ${EXIM}: run scripts/setup-exim.sh (scripts/setup.sh does) or set EXIM_BIN`;
}

/**
 * Whether a test file that needs Exim is to be skipped, saying why on stderr. Never in CI: it runs the set-up, so
 * a missing Exim there is a failure.
 */
export function skipWithoutExim(testFile: string): boolean {
  const missing = eximMissing();
  if (missing === undefined) return false;
  if (process.env.CI) throw new Error(missing);
  console.warn(`${testFile} skipped: ${missing}`);
  return true;
}

/** The instance's copy of the binary: Exim re-executes itself (exim_path) as exim_user to deliver. */
const binaryIn = (dir: string): string => join(dir, "exim4");

function eximConf(dir: string, port: number, user: { name: string; group: string }, options: EximOptions): string {
  const lines = [
    `exim_path = ${binaryIn(dir)}`,
    `exim_user = ${user.name}`,
    `exim_group = ${user.group}`,
    `spool_directory = ${join(dir, "spool")}`,
    `log_file_path = ${join(dir, "log", "%slog")}`,
    `pid_file_path = ${join(dir, "exim.pid")}`,
    "primary_hostname = exim.test",
    "local_interfaces = 127.0.0.1",
    `daemon_smtp_ports = ${port}`,
    // Nothing of the test's environment reaches Exim's children (and no warning about it in the log).
    "keep_environment =",
    "host_lookup =",
    "rfc1413_hosts =",
    ...(options.tls
      ? [
          `tls_certificate = ${join(dir, "tls", "cert.pem")}`,
          `tls_privatekey = ${join(dir, "tls", "key.pem")}`,
          "tls_advertise_hosts = *",
        ]
      : ["tls_advertise_hosts ="]),
    ...(options.relayPort === undefined ? ["queue_only = true"] : []),
    "acl_smtp_rcpt = acl_check_rcpt",
    "",
    "begin acl",
    "",
    "acl_check_rcpt:",
    "  accept authenticated = *",
    "  deny message = relaying needs authentication",
    "",
    "begin routers",
    "",
    "sink:",
    "  driver = manualroute",
    "  route_list = * 127.0.0.1",
    // The sink listens on this host: deliver to it anyway.
    "  self = send",
    "  transport = sink_smtp",
    "",
    "begin transports",
    "",
    "sink_smtp:",
    "  driver = smtp",
    `  port = ${options.relayPort ?? 25}`,
    "  hosts_avoid_tls = *",
    "",
    "begin authenticators",
    "",
    options.authenticators,
  ];
  return `${lines.join("\n")}\n`;
}

/** Starts a private Exim daemon; see EximOptions. close() it when done. */
export async function startExim(options: EximOptions): Promise<EximInstance> {
  const missing = eximMissing();
  if (missing !== undefined) throw new Error(missing);
  const folder = await daemonFolder("smtpgate-exim-");
  const { dir } = folder;
  const user = await eximUser();
  const spoolDir = join(dir, "spool");
  const logDir = join(dir, "log");
  const tlsDir = join(dir, "tls");
  await Promise.all([mkdir(spoolDir), mkdir(logDir), mkdir(tlsDir)]);
  if (options.tls) {
    await copyFile(options.tls.certFile, join(tlsDir, "cert.pem"));
    await copyFile(options.tls.keyFile, join(tlsDir, "key.pem"));
  }
  for (const owned of [spoolDir, logDir, tlsDir, join(tlsDir, "cert.pem"), join(tlsDir, "key.pem")]) {
    if (existsSync(owned)) await chown(owned, user.uid, user.gid);
  }
  // exim_user must reach the binary it re-executes for each delivery; the checkout may sit in a folder only root
  // enters (a CI clone in `mktemp -d`), the instance's folder does not.
  await copyFile(EXIM, binaryIn(dir));
  await chmod(binaryIn(dir), 0o755);
  const port = await freePort();
  const configFile = join(dir, "exim.conf");
  await writeFile(configFile, eximConf(dir, port, user, options));

  const mainlogFile = join(logDir, "mainlog");
  const mainlog = (): string => readLog(mainlogFile);
  const daemon = await startDaemonIn(
    folder,
    { command: binaryIn(dir), args: ["-C", configFile, "-bdf"], port, what: "Exim", timeoutMs: READY_TIMEOUT_MS },
    mainlog,
  );
  const logs = (): string => `${mainlog()}\n${daemon.output()}`;
  return {
    port,
    dir,
    configFile,
    uid: user.uid,
    gid: user.gid,
    get pid() {
      return daemon.pid;
    },
    mainlog,
    stderr: () => daemon.output(),
    waitForLog: (pattern, timeoutMs = 5_000) =>
      waitForMatch(logs, pattern, { timeoutMs, what: "Exim's mainlog or stderr" }),
    stop: () => daemon.stop(),
    close: () => daemon.close(),
  };
}

async function eximUser(): Promise<{ name: string; group: string; uid: number; gid: number }> {
  const id = async (flag: string): Promise<string> => (await execFileAsync("id", [flag, EXIM_USER])).stdout.trim();
  const [uid, gid, group] = await Promise.all([id("-u"), id("-g"), id("-gn")]);
  return { name: EXIM_USER, group, uid: Number(uid), gid: Number(gid) };
}
