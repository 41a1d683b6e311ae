// A private Postfix instance: main.cf and master.cf in a temp dir, its own queue, data directory and
// maillog file, one smtpd on an unprivileged loopback port; the system's Postfix (/etc/postfix) is never read or
// started. The master runs as a child of this process (`master -d`, the same daemon `postfix start` launches), so
// that it is killed when the tests exit, and is stopped by its PID. It runs as root, as the tests do here: the
// daemons drop to the `postfix` user themselves.
import { chown, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { daemonFolder, readLog, startDaemonIn, waitForMatch } from "../daemon.ts";
import { freePort } from "../ports.ts";
import { execFileAsync } from "../slapd/tools.ts";

const POSTFIX = process.env.POSTFIX_BIN || "/usr/sbin/postfix";
const MASTER = process.env.POSTFIX_MASTER_BIN || "/usr/lib/postfix/sbin/master";
/** The packaged master.cf: the services a working instance needs, as Debian ships them. */
const PACKAGED_MASTER_CF = process.env.POSTFIX_MASTER_CF || "/etc/postfix/master.cf";
const READY_TIMEOUT_MS = 15_000;

export interface PostfixOptions {
  /** main.cf text appended after the harness's own settings (a later line wins in main.cf). */
  mainCf?: string;
  /** `-o name=value` options of the smtpd service. */
  smtpdOptions?: Record<string, string>;
  /** Relay every message to 127.0.0.1:PORT (e.g. a dev/sink.ts sink); default: nothing is relayed. */
  relayPort?: number;
  /** smtpd's certificate and key: STARTTLS is then offered (smtpd_tls_security_level = may). */
  tls?: { certFile: string; keyFile: string };
  /** How many smtpd processes may run at once (default 1: one process serves the sessions in turn). */
  smtpdProcesses?: number;
}

export interface PostfixInstance {
  /** smtpd's port on 127.0.0.1. */
  port: number;
  /** The instance's folder: etc/ (main.cf, master.cf), queue/, data/, maillog. */
  dir: string;
  configDir: string;
  /** The master's PID while it runs. */
  readonly pid: number | undefined;
  /** The maillog so far. */
  maillog(): string;
  /** Waits until `pattern` appears in the maillog (default 5 s) and returns the match. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** `postfix -c DIR reload`: the daemons re-read main.cf and master.cf. */
  reload(): Promise<void>;
  /** SIGTERM to the master, wait for it to exit. Idempotent. */
  stop(): Promise<void>;
  /** stop() and remove the folder. Idempotent. */
  close(): Promise<void>;
}

/** The packaged master.cf without its inet services and with chroot off (the instance's queue is no jail). */
export function privateMasterCf(packaged: string, smtpdLine: string): string {
  const lines: string[] = [];
  let inDroppedService = false;
  for (const line of packaged.split("\n")) {
    if (line.startsWith("#") || line.trim() === "") continue;
    if (/^\s/.test(line)) {
      if (!inDroppedService) lines.push(line);
      continue;
    }
    const fields = line.split(/\s+/);
    inDroppedService = fields[1] === "inet";
    if (inDroppedService) continue;
    if (fields.length >= 8) fields[4] = "n";
    lines.push(fields.join("\t"));
  }
  return [...lines, smtpdLine, ""].join("\n");
}

function mainCf(dir: string, options: PostfixOptions): string {
  const lines = [
    "compatibility_level = 3.6",
    `queue_directory = ${join(dir, "queue")}`,
    `data_directory = ${join(dir, "data")}`,
    `maillog_file_prefixes = ${dir}`,
    `maillog_file = ${join(dir, "maillog")}`,
    "inet_interfaces = loopback-only",
    "inet_protocols = ipv4",
    "myhostname = postfix.test",
    "mydestination =",
    "mynetworks = 127.0.0.0/8",
    "biff = no",
    "smtputf8_enable = no",
    ...(options.relayPort === undefined
      ? ["default_transport = error:nothing is delivered by this test instance"]
      : [`relayhost = [127.0.0.1]:${options.relayPort}`, "smtp_tls_security_level = none"]),
    ...(options.tls
      ? [
          `smtpd_tls_cert_file = ${options.tls.certFile}`,
          `smtpd_tls_key_file = ${options.tls.keyFile}`,
          "smtpd_tls_security_level = may",
        ]
      : []),
  ];
  return [...lines, options.mainCf ?? "", ""].join("\n");
}

function smtpdLine(port: number, options: PostfixOptions): string {
  const extra = Object.entries(options.smtpdOptions ?? {}).map(([name, value]) => `\n  -o ${name}=${value}`);
  return `127.0.0.1:${port}\tinet\tn\t-\tn\t-\t${options.smtpdProcesses ?? 1}\tsmtpd${extra.join("")}`;
}

/** Starts a private Postfix; see PostfixOptions. close() it when done. */
export async function startPostfix(options: PostfixOptions = {}): Promise<PostfixInstance> {
  // The daemons run as `postfix`: they must reach the maillog's folder (daemonFolder's mode); data/ is theirs.
  const folder = await daemonFolder("smtpgate-postfix-");
  const { dir } = folder;
  const configDir = join(dir, "etc");
  const dataDir = join(dir, "data");
  await Promise.all([mkdir(configDir), mkdir(join(dir, "queue")), mkdir(dataDir)]);
  const { uid, gid } = await postfixUser();
  await chown(dataDir, uid, gid);
  const port = await freePort();
  await writeFile(join(configDir, "main.cf"), mainCf(dir, options));
  await writeFile(
    join(configDir, "master.cf"),
    privateMasterCf(await readFile(PACKAGED_MASTER_CF, "utf8"), smtpdLine(port, options)),
  );
  // `postfix check` makes the queue's subfolders with their owners and modes, as `postfix start` would.
  await run(POSTFIX, ["-c", configDir, "check"]);

  const maillogFile = join(dir, "maillog");
  const maillog = (): string => readLog(maillogFile);
  const master = await startDaemonIn(
    folder,
    { command: MASTER, args: ["-c", configDir, "-d"], port, what: "Postfix smtpd", timeoutMs: READY_TIMEOUT_MS },
    maillog,
  );
  return {
    port,
    dir,
    configDir,
    get pid() {
      return master.pid;
    },
    maillog,
    waitForLog: (pattern, timeoutMs = 5_000) =>
      waitForMatch(maillog, pattern, { timeoutMs, what: "Postfix's maillog" }),
    reload: async () => {
      await run(POSTFIX, ["-c", configDir, "reload"]);
    },
    stop: () => master.stop(),
    close: () => master.close(),
  };
}

async function postfixUser(): Promise<{ uid: number; gid: number }> {
  const { stdout } = await execFileAsync("id", ["postfix"]);
  const uid = /uid=(\d+)/.exec(stdout)?.[1];
  const gid = /gid=(\d+)/.exec(stdout)?.[1];
  if (uid === undefined || gid === undefined) throw new Error(`no postfix user: ${stdout}`);
  return { uid: Number(uid), gid: Number(gid) };
}

async function run(command: string, args: string[]): Promise<void> {
  try {
    await execFileAsync(command, args);
  } catch (error) {
    const failed = error as Error & { stderr?: string };
    throw new Error(`${command} ${args.join(" ")} failed: ${failed.stderr?.trim() || failed.message}`, {
      cause: error,
    });
  }
}
