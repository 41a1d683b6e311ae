// A private, unprivileged OpenLDAP server: slapd.conf in a temp dir, back_mdb seeded with slapadd (seed.ts, with
// memberOf computed by member-of.ts), the memberof overlay, pw-sha2, TLS from a throw-away PKI, listening on
// loopback ports only. For the tests, the demo and the benchmark; programs and paths in tools.ts.
import { spawn, type ChildProcess } from "node:child_process";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canConnect, freePorts } from "../ports.ts";
import { killOnExit, removeOnExit } from "../processes.ts";
import { copyServerPki, generateServerPki, type ServerPki } from "../server-pki.ts";
import { waitFor } from "../wait.ts";
import { withMemberOf } from "./member-of.ts";
import { BASE_DN, SEED, seedHashes, seedLdif, storedPassword } from "./seed.ts";
import { execFileAsync, MODULE_PATH, SCHEMA_DIR, SLAPADD, SLAPD } from "./tools.ts";

export { PASSWORD_SCHEMES, SEED, type PasswordScheme, type SeedUser, type SeedUsers } from "./seed.ts";
export { withMemberOf } from "./member-of.ts";

const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;

// One PKI per process (openssl takes longer than the rest of a start-up); each instance gets a copy of the files.
let pkiCache: Promise<ServerPki> | undefined;

function sharedPki(): Promise<ServerPki> {
  pkiCache ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), "smtpgate-pki-"));
    removeOnExit(dir);
    return generateServerPki(dir);
  })();
  pkiCache.catch(() => (pkiCache = undefined));
  return pkiCache;
}

export interface SlapdOptions {
  /** Adds `allow bind_anon_dn`: a bind with a DN and an empty password then succeeds (as anonymous). */
  allowBindAnonDn?: boolean;
  /** Which CA's server certificate slapd presents (default "ca": the one `pki.caPem` verifies). */
  serverCert?: "ca" | "other";
  /** More LDIF entries (no changetype records) appended to the seed; groupOfNames members get memberOf. */
  extraLdif?: string;
  /** Schema text (slapd.conf syntax), written to `extra.schema` in the instance dir and included after the
   * standard schemas (core, cosine, nis, inetorgperson). With `dataFrom`, pass the source instance's schema again. */
  extraSchema?: string;
  /** Listen on these ports (e.g. to stand in for a server that was closed); default: free ports. */
  ports?: { ldap: number; ldaps: number };
  /** `dir` of another (stopped or idle) instance: copy its database instead of loading the seed. */
  dataFrom?: string;
  /** Adds the monitor database (cn=Monitor, readable by the admin): tests count the binds slapd saw (monitor.ts). */
  monitor?: boolean;
}

export interface SlapdInstance {
  /** ldap://127.0.0.1:PORT (StartTLS available). */
  ldapUrl: string;
  /** ldaps://127.0.0.1:PORT. */
  ldapsUrl: string;
  /** ldapi:// URL of the instance's Unix socket (rootdn tooling), or undefined if the path was too long. */
  ldapiUrl: string | undefined;
  ports: { ldap: number; ldaps: number };
  baseDn: string;
  adminDn: string;
  adminPassword: string;
  serviceDn: string;
  servicePassword: string;
  pki: ServerPki;
  dir: string;
  /** Whether slapd is currently running. */
  readonly running: boolean;
  /** slapd's process id while it runs (the benchmark reads its CPU time). */
  readonly pid: number | undefined;
  /** slapd's stderr so far (bounded). */
  output(): string;
  /** SIGTERM, wait for exit (SIGKILL after 3 s). Idempotent. */
  stop(): Promise<void>;
  /** Start again on the same ports with the same data. No-op when running. */
  start(): Promise<void>;
  /** stop() and remove the temp dir. Idempotent. */
  close(): Promise<void>;
}

function slapdConf(dir: string, pki: ServerPki, options: SlapdOptions, rootpwHash: string): string {
  const other = options.serverCert === "other";
  const lines = [
    `modulepath ${MODULE_PATH}`,
    "moduleload back_mdb",
    "moduleload memberof",
    "moduleload pw-sha2",
    "",
    `include ${SCHEMA_DIR}/core.schema`,
    `include ${SCHEMA_DIR}/cosine.schema`,
    `include ${SCHEMA_DIR}/nis.schema`,
    `include ${SCHEMA_DIR}/inetorgperson.schema`,
    ...(options.extraSchema === undefined ? [] : [`include ${join(dir, "extra.schema")}`]),
    "",
    `pidfile ${join(dir, "slapd.pid")}`,
    `argsfile ${join(dir, "slapd.args")}`,
    "sizelimit 500",
    "loglevel none",
    `TLSCACertificateFile ${pki.caFile}`,
    `TLSCertificateFile ${other ? pki.otherCertFile : pki.certFile}`,
    `TLSCertificateKeyFile ${other ? pki.otherKeyFile : pki.keyFile}`,
    "TLSVerifyClient never",
    ...(options.allowBindAnonDn ? ["allow bind_anon_dn"] : []),
    "",
    "database mdb",
    `suffix "${BASE_DN}"`,
    `rootdn "${SEED.adminDn}"`,
    `rootpw ${rootpwHash}`,
    `directory ${join(dir, "data")}`,
    "maxsize 67108864",
    "index objectClass eq",
    "index uid,mail,cn eq",
    "index member eq",
    "",
    "access to attrs=userPassword",
    `  by dn.exact="${SEED.serviceDn}" read`,
    "  by self read",
    "  by anonymous auth",
    "  by * none",
    "access to *",
    `  by dn.exact="${SEED.serviceDn}" read`,
    "  by self read",
    "  by * read",
    "",
    "overlay memberof",
    "",
    ...(options.monitor ? ["database monitor", `access to * by dn.exact="${SEED.adminDn}" read by * none`, ""] : []),
  ];
  return lines.join("\n");
}

/** Starts a private slapd with the seed data; see SlapdOptions. close() it when done. */
export async function startSlapd(options: SlapdOptions = {}): Promise<SlapdInstance> {
  // A free port is free when we look, not necessarily when slapd binds it (other test files run in parallel):
  // when slapd finds its port taken, start over with fresh ports, unless the caller fixed them.
  for (let attempt = 1; ; attempt += 1) {
    const dir = await mkdtemp(join(tmpdir(), "smtpgate-slapd-"));
    const forgetDir = removeOnExit(dir);
    try {
      return await setUp(dir, forgetDir, options);
    } catch (err) {
      forgetDir();
      await rm(dir, { recursive: true, force: true });
      if (!options.ports && attempt < 5 && /Address already in use/.test((err as Error).message)) continue;
      throw err;
    }
  }
}

async function setUp(dir: string, forgetDir: () => void, options: SlapdOptions): Promise<SlapdInstance> {
  const [pki, hashes, portList] = await Promise.all([
    sharedPki().then((shared) => copyServerPki(shared, join(dir, "pki"))),
    seedHashes(),
    options.ports ? Promise.resolve([options.ports.ldap, options.ports.ldaps]) : freePorts(2),
  ]);
  const ports = { ldap: portList[0] ?? 0, ldaps: portList[1] ?? 0 };
  const dataDir = join(dir, "data");
  await mkdir(dataDir, { mode: 0o700 });
  const confFile = join(dir, "slapd.conf");
  if (options.extraSchema !== undefined) await writeFile(join(dir, "extra.schema"), options.extraSchema);
  await writeFile(confFile, slapdConf(dir, pki, options, storedPassword(hashes, "SSHA", SEED.adminPassword)));

  if (options.dataFrom) {
    await copyFile(join(options.dataFrom, "data", "data.mdb"), join(dataDir, "data.mdb"));
  } else {
    const ldifFile = join(dir, "seed.ldif");
    await writeFile(ldifFile, withMemberOf(seedLdif(hashes) + "\n" + (options.extraLdif ?? "")));
    try {
      await execFileAsync(SLAPADD, ["-q", "-f", confFile, "-l", ldifFile]);
    } catch (err) {
      const e = err as Error & { stderr?: string };
      throw new Error(`slapadd failed: ${e.stderr?.trim() || e.message}`, { cause: err });
    }
  }

  const socketPath = join(dir, "ldapi");
  const ldapiUrl = socketPath.length < 100 ? `ldapi://${encodeURIComponent(socketPath)}` : undefined;
  const ldapUrl = `ldap://127.0.0.1:${ports.ldap}`;
  const ldapsUrl = `ldaps://127.0.0.1:${ports.ldaps}`;
  const listen = [`${ldapUrl}/`, `${ldapsUrl}/`, ...(ldapiUrl ? [`${ldapiUrl}/`] : [])].join(" ");

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stderr = "";
  let closed = false;
  let starting: Promise<void> | undefined;

  const launch = async (): Promise<void> => {
    stderr = "";
    // -d none: only the messages logged at any level (start-up errors, "slapd starting"), to stderr; and any -d
    // keeps slapd in the foreground.
    const proc = spawn(SLAPD, ["-f", confFile, "-h", listen, "-d", "none"], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = proc;
    killOnExit(proc);
    const append = (chunk: Buffer): void => {
      stderr = (stderr + chunk.toString("utf8")).slice(-20_000);
    };
    proc.stdout?.on("data", append);
    proc.stderr?.on("data", append);
    let hasExited = false;
    let spawnError: Error | undefined;
    exited = new Promise<void>((resolve) => {
      proc.once("error", (err) => {
        spawnError = err;
        if (proc.pid === undefined) {
          // spawn failed (e.g. ENOENT): there is no process to wait for
          hasExited = true;
          if (child === proc) child = undefined;
          resolve();
        }
      });
      proc.once("close", () => {
        hasExited = true;
        if (child === proc) child = undefined;
        resolve();
      });
    });
    // The test process must be free to exit while slapd runs; the exit hook kills it then.
    proc.unref();
    (proc.stdout as unknown as { unref?: () => void } | null)?.unref?.();
    (proc.stderr as unknown as { unref?: () => void } | null)?.unref?.();

    const exitedEarly = (): Error =>
      new Error(
        `slapd exited during start-up (code ${String(proc.exitCode)}, signal ${String(proc.signalCode)})` +
          `${spawnError ? `: ${spawnError.message}` : ""}\n${stderr}`,
      );
    try {
      await waitFor(
        async () => {
          if (hasExited) throw exitedEarly();
          const [a, b] = await Promise.all([canConnect(ports.ldap), canConnect(ports.ldaps)]);
          return a && b && !hasExited;
        },
        { timeoutMs: READY_TIMEOUT_MS, intervalMs: 15, what: `slapd to listen on ${ldapUrl} and ${ldapsUrl}` },
      );
    } catch (error) {
      if (hasExited) {
        child = undefined;
        throw error;
      }
      await terminate();
      throw new Error(`slapd did not listen on ${ldapUrl} and ${ldapsUrl} within ${READY_TIMEOUT_MS} ms\n${stderr}`, {
        cause: error,
      });
    }
  };

  const terminate = async (): Promise<void> => {
    const proc = child;
    if (!proc) return;
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    } else {
      await exited;
    }
    child = undefined;
  };

  const stop = async (): Promise<void> => {
    if (starting) await starting.catch(() => undefined);
    await terminate();
  };

  const start = async (): Promise<void> => {
    if (closed) throw new Error("slapd instance is closed");
    if (child) return;
    starting ??= launch().finally(() => (starting = undefined));
    await starting;
  };

  const close = async (): Promise<void> => {
    if (closed) return;
    await stop();
    closed = true;
    forgetDir();
    await rm(dir, { recursive: true, force: true });
  };

  await start();

  return {
    ldapUrl,
    ldapsUrl,
    ldapiUrl,
    ports,
    baseDn: BASE_DN,
    adminDn: SEED.adminDn,
    adminPassword: SEED.adminPassword,
    serviceDn: SEED.serviceDn,
    servicePassword: SEED.servicePassword,
    pki,
    dir,
    get running() {
      return child !== undefined;
    },
    get pid() {
      return child?.pid;
    },
    output: () => stderr,
    stop,
    start,
    close,
  };
}
