// A private, unprivileged OpenLDAP server for tests: slapd.conf in a temp dir, back_mdb seeded with slapadd, the
// memberof overlay, pw-sha2, TLS from a throw-away PKI, listening on loopback ports only. Debian paths
// (/usr/sbin/slapd, /usr/lib/ldap, /etc/ldap/schema) with overrides through SLAPD_BIN, SLAPADD_BIN,
// SLAPPASSWD_BIN, SLAPD_MODULE_PATH and SLAPD_SCHEMA_DIR.
import { execFile, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { copyServerPki, generateServerPki } from "../server-pki.ts";
import type { ServerPki } from "../server-pki.ts";
import { freePorts } from "../ports.ts";

const execFileAsync = promisify(execFile);

function tool(envName: string, name: string): string {
  const fromEnv = process.env[envName];
  if (fromEnv) return fromEnv;
  const sbin = `/usr/sbin/${name}`;
  return existsSync(sbin) ? sbin : name;
}

const SLAPD = tool("SLAPD_BIN", "slapd");
const SLAPADD = tool("SLAPADD_BIN", "slapadd");
const SLAPPASSWD = tool("SLAPPASSWD_BIN", "slappasswd");
const MODULE_PATH = process.env.SLAPD_MODULE_PATH || "/usr/lib/ldap";
const SCHEMA_DIR = process.env.SLAPD_SCHEMA_DIR || "/etc/ldap/schema";

const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;

// ---------------------------------------------------------------------------------------------------------------
// Seed data

const BASE_DN = "dc=example,dc=com";

/** The userPassword storage schemes of the scheme users (`<scheme>-user` with password `<scheme>-password`). */
export const PASSWORD_SCHEMES = ["ssha", "sha", "smd5", "md5", "ssha256", "ssha512", "plain"] as const;
export type PasswordScheme = (typeof PASSWORD_SCHEMES)[number];

export interface SeedUser {
  uid: string;
  password: string;
  dn: string;
  mail: string;
  cn: string;
  /** How userPassword is stored in the directory. */
  scheme: "SSHA" | "SHA" | "SMD5" | "MD5" | "SSHA256" | "SSHA512" | "plain";
}

function person(uid: string, ou: string, password: string, scheme: SeedUser["scheme"], mail?: string): SeedUser {
  return {
    uid,
    password,
    dn: `uid=${uid},ou=${ou},${BASE_DN}`,
    mail: mail ?? `${uid}@example.com`,
    cn: uid,
    scheme,
  };
}

const schemeUsers = Object.fromEntries(
  PASSWORD_SCHEMES.map((s) => [
    `${s}-user`,
    person(`${s}-user`, "people", `${s}-password`, s === "plain" ? "plain" : (s.toUpperCase() as SeedUser["scheme"])),
  ]),
) as Record<`${PasswordScheme}-user`, SeedUser>;

/** The seed's users by name: alice, bob, dup, dupContractor and `<scheme>-user` for each of PASSWORD_SCHEMES. */
export type SeedUsers = { alice: SeedUser; bob: SeedUser; dup: SeedUser; dupContractor: SeedUser } & Record<
  `${PasswordScheme}-user`,
  SeedUser
> &
  Record<string, SeedUser>;

/** What the seed holds: every test server starts with exactly this (plus `extraLdif`). */
export const SEED = {
  baseDn: BASE_DN,
  adminDn: `cn=admin,${BASE_DN}`,
  adminPassword: "admin-password",
  serviceDn: `cn=smtpgate,ou=services,${BASE_DN}`,
  servicePassword: "service-password",
  peopleDn: `ou=people,${BASE_DN}`,
  groupsDn: `ou=groups,${BASE_DN}`,
  servicesDn: `ou=services,${BASE_DN}`,
  contractorsDn: `ou=contractors,${BASE_DN}`,
  /** groupOfNames whose only member is alice; `(memberOf=<this>)` matches alice only. */
  smtpUsersGroupDn: `cn=smtp-users,ou=groups,${BASE_DN}`,
  users: {
    /** Member of cn=smtp-users. */
    alice: person("alice", "people", "alice-password", "SSHA"),
    /** Not a member of any group. */
    bob: person("bob", "people", "bob-password", "SSHA"),
    /** uid=dup exists twice (this one and `dupContractor`): an ambiguous user. Same mail on both too. */
    dup: person("dup", "people", "dup-password", "SSHA", "dup@example.com"),
    dupContractor: person("dup", "contractors", "dup-password", "SSHA", "dup@example.com"),
    ...schemeUsers,
  } as SeedUsers,
  /** Both DNs with uid=dup. */
  dupDns: [`uid=dup,ou=people,${BASE_DN}`, `uid=dup,ou=contractors,${BASE_DN}`],
} as const;

// Hashes come from slappasswd (salted ones differ per call; one set per process is plenty).
let hashCache: Promise<Map<string, string>> | undefined;

async function slappasswd(scheme: string, password: string): Promise<string> {
  const args = ["-h", `{${scheme}}`, "-s", password];
  if (scheme.startsWith("SSHA2") || scheme.startsWith("SSHA5")) {
    args.unshift("-o", `module-path=${MODULE_PATH}`, "-o", "module-load=pw-sha2");
  }
  const { stdout } = await execFileAsync(SLAPPASSWD, args);
  const hash = stdout.trim();
  if (!hash.startsWith(`{${scheme}}`)) throw new Error(`slappasswd -h {${scheme}} printed ${JSON.stringify(hash)}`);
  return hash;
}

function hashKey(scheme: string, password: string): string {
  return `${scheme}\u0000${password}`;
}

function seedHashes(): Promise<Map<string, string>> {
  hashCache ??= (async () => {
    const wanted = new Map<string, [string, string]>();
    const want = (scheme: string, password: string): void => {
      wanted.set(hashKey(scheme, password), [scheme, password]);
    };
    want("SSHA", SEED.adminPassword);
    want("SSHA", SEED.servicePassword);
    for (const u of Object.values(SEED.users)) if (u.scheme !== "plain") want(u.scheme, u.password);
    const entries = await Promise.all(
      [...wanted].map(async ([key, [scheme, pw]]) => [key, await slappasswd(scheme, pw)] as const),
    );
    return new Map(entries);
  })();
  hashCache.catch(() => (hashCache = undefined));
  return hashCache;
}

function storedPassword(hashes: Map<string, string>, scheme: SeedUser["scheme"], password: string): string {
  if (scheme === "plain") return password;
  const h = hashes.get(hashKey(scheme, password));
  if (!h) throw new Error(`no hash for ${scheme}`);
  return h;
}

function seedLdif(hashes: Map<string, string>): string {
  const entries: string[] = [
    [
      `dn: ${BASE_DN}`,
      "objectClass: top",
      "objectClass: dcObject",
      "objectClass: organization",
      "dc: example",
      "o: Example",
    ].join("\n"),
  ];
  for (const ou of ["people", "groups", "services", "contractors"]) {
    entries.push([`dn: ou=${ou},${BASE_DN}`, "objectClass: organizationalUnit", `ou: ${ou}`].join("\n"));
  }
  entries.push(
    [
      `dn: ${SEED.serviceDn}`,
      "objectClass: organizationalRole",
      "objectClass: simpleSecurityObject",
      "cn: smtpgate",
      "description: smtpgate service account",
      `userPassword: ${storedPassword(hashes, "SSHA", SEED.servicePassword)}`,
    ].join("\n"),
  );
  for (const u of Object.values(SEED.users)) {
    entries.push(
      [
        `dn: ${u.dn}`,
        "objectClass: inetOrgPerson",
        `uid: ${u.uid}`,
        `cn: ${u.cn}`,
        `sn: ${u.uid}`,
        `mail: ${u.mail}`,
        `userPassword: ${storedPassword(hashes, u.scheme, u.password)}`,
      ].join("\n"),
    );
  }
  entries.push(
    [
      `dn: ${SEED.smtpUsersGroupDn}`,
      "objectClass: groupOfNames",
      "cn: smtp-users",
      `member: ${SEED.users.alice.dn}`,
    ].join("\n"),
  );
  return entries.join("\n\n") + "\n";
}

// ---------------------------------------------------------------------------------------------------------------
// memberOf for slapadd: slapadd writes straight into the backend, past the memberof overlay, so the operational
// memberOf values are computed here from the groupOfNames `member` values of the whole LDIF (seed + extraLdif)
// and written into the member entries. Handles plain and base64 (`::`) values and folded lines; entries only
// (no changetype records).

function normDn(dn: string): string {
  return dn
    .split(",")
    .map((rdn) =>
      rdn
        .trim()
        .replace(/\s*=\s*/, "=")
        .toLowerCase(),
    )
    .join(",");
}

function parseLine(line: string): { attr: string; value: string } | undefined {
  const m = /^([A-Za-z0-9;-]+)(::?)\s*(.*)$/.exec(line);
  if (!m) return undefined;
  const [, attr = "", sep, raw = ""] = m;
  return { attr: attr.toLowerCase(), value: sep === "::" ? Buffer.from(raw, "base64").toString("utf8") : raw };
}

export function withMemberOf(ldif: string): string {
  const records = ldif
    .replace(/\r\n/g, "\n")
    .replace(/\n /g, "") // unfold
    .split(/\n[ \t]*\n/)
    .map((r) => r.split("\n").filter((l) => l.length > 0 && !l.startsWith("#")))
    .filter((lines) => lines.length > 0 && !(lines.length === 1 && /^version:/i.test(lines[0] ?? "")));
  const dnOf = (lines: string[]): string | undefined => {
    const first = lines[0] === undefined ? undefined : parseLine(lines[0]);
    return first?.attr === "dn" ? first.value : undefined;
  };
  const memberOf = new Map<string, string[]>();
  for (const lines of records) {
    const groupDn = dnOf(lines);
    if (groupDn === undefined) continue;
    for (const l of lines) {
      const p = parseLine(l);
      if (p?.attr === "member") {
        const key = normDn(p.value);
        memberOf.set(key, [...(memberOf.get(key) ?? []), groupDn]);
      }
    }
  }
  return (
    records
      .map((lines) => {
        const dn = dnOf(lines);
        const groups = dn === undefined ? undefined : memberOf.get(normDn(dn));
        if (!groups) return lines.join("\n");
        const present = new Set(
          lines
            .map(parseLine)
            .filter((p) => p?.attr === "memberof")
            .map((p) => normDn(p?.value ?? "")),
        );
        const extra = groups.filter((g) => !present.has(normDn(g))).map((g) => `memberOf: ${g}`);
        return [...lines, ...extra].join("\n");
      })
      .join("\n\n") + "\n"
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Process bookkeeping: slapd children die with the test process, and temp dirs left open are removed.

const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHooksInstalled = false;

function cleanupSync(): void {
  for (const child of liveChildren) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  liveChildren.clear();
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  liveDirs.clear();
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on("exit", cleanupSync);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      cleanupSync();
      // Only re-raise when nobody else handles the signal: then the default action (exit) must still happen.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.once(signal, onSignal);
  }
}

// One PKI per process (openssl takes longer than the rest of a start-up); each instance gets a copy of the files.
let pkiCache: Promise<ServerPki> | undefined;

function sharedPki(): Promise<ServerPki> {
  pkiCache ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), "smtpgate-pki-"));
    liveDirs.add(dir);
    return generateServerPki(dir);
  })();
  pkiCache.catch(() => (pkiCache = undefined));
  return pkiCache;
}

// ---------------------------------------------------------------------------------------------------------------
// The server

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
  ];
  return lines.join("\n");
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.setTimeout(500, () => done(false));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts a private slapd with the seed data; see SlapdOptions. close() it when done. */
export async function startSlapd(options: SlapdOptions = {}): Promise<SlapdInstance> {
  installExitHooks();
  // A free port is free when we look, not necessarily when slapd binds it (other test files run in parallel):
  // when slapd finds its port taken, start over with fresh ports, unless the caller fixed them.
  for (let attempt = 1; ; attempt += 1) {
    const dir = await mkdtemp(join(tmpdir(), "smtpgate-slapd-"));
    liveDirs.add(dir);
    try {
      return await setUp(dir, options);
    } catch (err) {
      liveDirs.delete(dir);
      await rm(dir, { recursive: true, force: true });
      if (!options.ports && attempt < 5 && /Address already in use/.test((err as Error).message)) continue;
      throw err;
    }
  }
}

async function setUp(dir: string, options: SlapdOptions): Promise<SlapdInstance> {
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
    liveChildren.add(proc);
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
          liveChildren.delete(proc);
          if (child === proc) child = undefined;
          resolve();
        }
      });
      proc.once("close", () => {
        hasExited = true;
        liveChildren.delete(proc);
        if (child === proc) child = undefined;
        resolve();
      });
    });
    // The test process must be free to exit while slapd runs; the exit hook kills it then.
    proc.unref();
    (proc.stdout as unknown as { unref?: () => void } | null)?.unref?.();
    (proc.stderr as unknown as { unref?: () => void } | null)?.unref?.();

    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (hasExited) {
        child = undefined;
        throw new Error(
          `slapd exited during start-up (code ${String(proc.exitCode)}, signal ${String(proc.signalCode)})` +
            `${spawnError ? `: ${spawnError.message}` : ""}\n${stderr}`,
        );
      }
      const [a, b] = await Promise.all([canConnect(ports.ldap), canConnect(ports.ldaps)]);
      if (a && b && !hasExited) return;
      if (Date.now() > deadline) {
        await terminate();
        throw new Error(`slapd did not listen on ${ldapUrl} and ${ldapsUrl} within ${READY_TIMEOUT_MS} ms\n${stderr}`);
      }
      await sleep(15);
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
    liveDirs.delete(dir);
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
