/**
 * The smtpgate benchmark: `npm run bench` (add `-- --quick` for one short run per figure).
 *
 * Starts its own slapd (200 users), the decision API and the edge relay as child processes, an upstream sink and
 * a bare smtp-server baseline, then measures in one run, as ratios against baselines measured in the same run
 * (docs/performance.md): raw ldapts search+bind vs API auth decisions (uncached, cached), the authenticated ping
 * vs cached decisions, certificate decisions, full relay sessions vs bare smtp-server sessions, and relay memory
 * with 1,000 idle connections. Every figure is the median of 3 runs. Writes bench-results/latest.json and
 * bench-results/latest.md.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import { join } from "node:path";
import { Client } from "ldapts";
import { Pool } from "undici";
import { CAC_SCHEMA, certUsersLdif } from "../../test/harness/cert-ldap.ts";
import { generateClientPki } from "../../test/harness/client-pki.ts";
import { serveCrls } from "../../test/harness/crl-server.ts";
import { freePort } from "../../test/harness/ports.ts";
import { SEED, startSlapd } from "../../test/harness/slapd.ts";
import { closedLoop, medianRun, rssBytes, type Processes, type RunResult } from "./measure.ts";
import { messageOfSize, submitOnce } from "./smtp-client.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const QUICK = process.argv.includes("--quick");
const RUNS = QUICK ? 1 : 3;
const SECONDS = QUICK ? 1 : 2.5;
const CONCURRENCY = [1, 8, 32];
const USERS = 200;
const TOKEN = "bench-token-0123456789abcdef";
const MESSAGE = messageOfSize(10 * 1024);

/** Reference figures (docs/performance.md) measured on this kind of machine (not re-measurable here). */
const REFERENCE = {
  dovecotUncached: { 1: 2300, 8: 3200, 32: 3600 } as Record<number, number>,
  postfixSessions: { 1: 18, 8: 117, 32: 126 } as Record<number, number>,
};

const temp = await mkdtemp(join(os.tmpdir(), "smtpgate-bench-"));
const children: ChildProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

function log(text: string): void {
  process.stderr.write(`${text}\n`);
}

function ssha(password: string): string {
  const salt = randomBytes(8);
  return `{SSHA}${Buffer.concat([createHash("sha1").update(password).update(salt).digest(), salt]).toString("base64")}`;
}

function benchUsersLdif(): string {
  const entries = [`dn: ou=bench,${SEED.baseDn}\nobjectClass: organizationalUnit\nou: bench\n`];
  for (let i = 0; i < USERS; i += 1) {
    const uid = `bench${String(i).padStart(3, "0")}`;
    entries.push(
      `dn: uid=${uid},ou=bench,${SEED.baseDn}\nobjectClass: inetOrgPerson\nuid: ${uid}\ncn: ${uid}\nsn: ${uid}\nmail: ${uid}@bench.example\nuserPassword: ${ssha(`${uid}-password`)}\n`,
    );
  }
  return entries.join("\n");
}

/** Spawns a node script, sends its stdout to a file, waits for a line matching `ready`. */
async function spawnNode(
  name: string,
  args: string[],
  ready: RegExp,
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const logFile = join(temp, `${name}.log`);
  const fd = openSync(logFile, "w");
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", fd, fd],
  });
  closeSync(fd);
  children.push(child);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const text = readFileSync(logFile, "utf8");
    const match = ready.exec(text);
    if (match) return { child, match };
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`${name} did not start:\n${text.slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function measure(
  label: string,
  concurrency: number,
  operation: (worker: number) => Promise<void>,
  processes: Processes,
): Promise<RunResult> {
  // A short unrecorded run first, so JIT warm-up and connection set-up do not land in the first figure.
  await closedLoop(concurrency, QUICK ? 0.3 : 0.7, operation, processes);
  const runs: RunResult[] = [];
  for (let run = 0; run < RUNS; run += 1) runs.push(await closedLoop(concurrency, SECONDS, operation, processes));
  const median = medianRun(runs);
  log(
    `  ${label.padEnd(34)} c=${String(concurrency).padStart(2)}  ${median.rate.toFixed(0).padStart(6)}/s  p50 ${median.p50.toFixed(2)} ms  p99 ${median.p99.toFixed(2)} ms${median.errors ? `  errors ${median.errors}` : ""}`,
  );
  return median;
}

// ---------------------------------------------------------------------------------------------------------------
log(`smtpgate benchmark: ${RUNS} run(s) of ${SECONDS} s per figure, concurrency ${CONCURRENCY.join("/")}`);
const crls = await serveCrls();
cleanups.push(() => crls.close());
const pki = await generateClientPki({ crlBaseUrl: crls.baseUrl });
crls.set("/intermediate.crl", pki.crls.intermediateCurrent.der);
const slapd = await startSlapd({ extraSchema: CAC_SCHEMA, extraLdif: `${certUsersLdif(pki)}\n${benchUsersLdif()}` });
cleanups.push(() => slapd.close());

const apiPort = await freePort();
const apiConfig = {
  directories: {
    corp: {
      hosts: [slapd.ldapUrl],
      tls: { caFile: slapd.pki.caFile },
      bind: { dn: SEED.serviceDn, password: { env: "BENCH_BIND_PW" } },
      baseDn: SEED.baseDn,
      maxConnections: 64,
    },
  },
  smtpAuthQueries: {
    bind: { directory: "corp", baseDn: `ou=bench,${SEED.baseDn}`, filter: "(uid={u})" },
  },
  certificateQueries: { "by-mail": { directory: "corp", filter: "(mail={email})" } },
  crlSources: { "client-ca": { url: `${crls.baseUrl}/intermediate.crl` } },
  authProfiles: {
    uncached: { type: "ldap", query: "bind" },
    cached: { type: "ldap", query: "bind", ...cacheSettings() },
    cert: {
      type: "certificate",
      query: "by-mail",
      trustAnchors: { pem: pki.rootPem },
      intermediates: { pem: pki.intermediate.pem },
      revocation: { crlSources: ["client-ca"] },
    },
  },
  mailFlowPolicies: {
    SUBMISSION: {
      behaviour: "accept",
      tls: "required",
      smtpAuth: "required",
      maxMessageBytes: 1048576,
      maxConnectionsPerClient: 5000,
    },
  },
  listeners: {
    uncached: {
      authProfile: "uncached",
      hostAccessTable: [{ name: "ALL", match: ["0.0.0.0/0", "::/0"], policy: "SUBMISSION" }],
    },
    cached: { authProfile: "cached" },
    cert: { authProfile: "cert" },
  },
  api: { tokens: [{ env: "BENCH_TOKEN" }], listen: { host: "127.0.0.1", port: apiPort } },
};

/** The cached profile's settings, if this version of the config schema has a decision cache. */
function cacheSettings(): Record<string, unknown> {
  return process.env.SMTPGATE_BENCH_NO_CACHE ? {} : { cache: { positiveTtlSeconds: 300, negativeTtlSeconds: 60 } };
}

await writeFile(join(temp, "api.json"), JSON.stringify(apiConfig));
// SMTPGATE_BENCH_PROFILE=DIR writes a V8 CPU profile of the API and the relay into DIR (for finding hot paths).
const profile = process.env.SMTPGATE_BENCH_PROFILE
  ? ["--cpu-prof", `--cpu-prof-dir=${process.env.SMTPGATE_BENCH_PROFILE}`]
  : [];
const api = await spawnNode(
  "api",
  [...profile, "api/runtime/node/main.ts", "--config", join(temp, "api.json")],
  /"msg":"listening"/,
  { BENCH_BIND_PW: SEED.servicePassword, BENCH_TOKEN: TOKEN },
);
const apiPid = api.child.pid as number;
const slapdPid = () => slapd.pid;

const pool = new Pool(`http://127.0.0.1:${apiPort}`, { connections: 64, pipelining: 1, keepAliveTimeout: 60_000 });
const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
async function post(path: string, body: string, check: (text: string) => boolean): Promise<void> {
  const response = await pool.request({ method: "POST", path, headers, body });
  const text = await response.body.text();
  if (response.statusCode !== 200 || !check(text))
    throw new Error(`${path}: ${response.statusCode} ${text.slice(0, 200)}`);
}
const authBody = (listener: string, user: number) =>
  JSON.stringify({
    listener,
    client: { ip: "192.0.2.1" },
    mechanism: "PLAIN",
    username: `bench${String(user).padStart(3, "0")}`,
    password: `bench${String(user).padStart(3, "0")}-password`,
  });
const allowed = (text: string) => text.includes('"verdict":"allow"');

const results: Record<string, Record<number, RunResult>> = {};
const record = (name: string, concurrency: number, result: RunResult) => ((results[name] ??= {})[concurrency] = result);

// (a) baselines: the directory's limit (raw ldapts, same StartTLS as the API) and the HTTP stack's.
log("baselines");
for (const concurrency of CONCURRENCY) {
  const pairs = await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const service = new Client({ url: slapd.ldapUrl });
      const user = new Client({ url: slapd.ldapUrl });
      for (const client of [service, user]) await client.startTLS({ ca: [slapd.pki.caPem], servername: "localhost" });
      await service.bind(SEED.serviceDn, SEED.servicePassword);
      return { service, user };
    }),
  );
  let next = 0;
  record(
    "raw ldapts search+bind (StartTLS)",
    concurrency,
    await measure(
      "raw ldapts search+bind",
      concurrency,
      async (worker) => {
        const pair = pairs[worker] as (typeof pairs)[number];
        const n = next++ % USERS;
        const uid = `bench${String(n).padStart(3, "0")}`;
        const found = await pair.service.search(`ou=bench,${SEED.baseDn}`, {
          filter: `(uid=${uid})`,
          attributes: ["1.1"],
          sizeLimit: 2,
        });
        await pair.user.bind(found.searchEntries[0]?.dn as string, `${uid}-password`);
      },
      { slapd: slapdPid() },
    ),
  );
  await Promise.all(pairs.flatMap((pair) => [pair.service.unbind(), pair.user.unbind()]));
}
for (const concurrency of CONCURRENCY) {
  record(
    "API GET /v1/ping (HTTP baseline)",
    concurrency,
    await measure(
      "API GET /v1/ping",
      concurrency,
      async () => {
        const response = await pool.request({ method: "GET", path: "/v1/ping", headers });
        await response.body.text();
        if (response.statusCode !== 200) throw new Error(`ping ${response.statusCode}`);
      },
      { api: apiPid },
    ),
  );
}

// (b) auth decisions, (c) certificate decisions
log("API decisions");
let user = 0;
for (const concurrency of CONCURRENCY) {
  record(
    "API auth, uncached",
    concurrency,
    await measure(
      "API auth uncached",
      concurrency,
      () => post("/v1/decide/auth", authBody("uncached", user++ % USERS), allowed),
      { api: apiPid, slapd: slapdPid() },
    ),
  );
}
for (let i = 0; i < USERS; i += 1) await post("/v1/decide/auth", authBody("cached", i), allowed);
for (const concurrency of CONCURRENCY) {
  record(
    "API auth, cached",
    concurrency,
    await measure(
      "API auth cached",
      concurrency,
      () => post("/v1/decide/auth", authBody("cached", user++ % USERS), allowed),
      { api: apiPid, slapd: slapdPid() },
    ),
  );
}
const certBody = JSON.stringify({
  listener: "cert",
  client: { ip: "192.0.2.1" },
  tls: { version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384" },
  certificate: { chain: pki.chain("alice") },
});
for (const concurrency of CONCURRENCY) {
  record(
    "API certificate (tls) decisions",
    concurrency,
    await measure("API tls decisions", concurrency, () => post("/v1/decide/tls", certBody, allowed), {
      api: apiPid,
      slapd: slapdPid(),
    }),
  );
}
const apiRssUnderLoad = rssBytes(apiPid);

// (d) relay sessions vs a bare smtp-server
log("SMTP sessions (EHLO, STARTTLS, AUTH, MAIL, RCPT, 10 kB DATA, QUIT)");
const sink = await spawnNode("sink", ["scripts/bench/sink-process.ts"], /PORT (\d+)/);
const bare = await spawnNode(
  "bare-smtp",
  ["scripts/bench/bare-smtp.ts", slapd.pki.keyFile, slapd.pki.certFile],
  /PORT (\d+)/,
);
const relayPort = await freePort();
const relayHealth = await freePort();
await writeFile(
  join(temp, "relay.json"),
  JSON.stringify({
    listener: "uncached",
    hostname: "relay.bench",
    api: { url: `http://127.0.0.1:${apiPort}`, token: { env: "BENCH_TOKEN" } },
    tls: { keyFile: slapd.pki.keyFile, certFile: slapd.pki.certFile },
    listen: { starttls: { host: "127.0.0.1", port: relayPort }, health: { host: "127.0.0.1", port: relayHealth } },
    upstream: { host: "127.0.0.1", port: Number(sink.match[1]), maxConnections: 32 },
    limits: { maxClients: 5000 },
  }),
);
const relay = await spawnNode(
  "relay",
  [...profile, "edge-relay/main.ts", "--config", join(temp, "relay.json")],
  /relay listening/,
  { BENCH_TOKEN: TOKEN },
);
const relayPid = relay.child.pid as number;
const session = (port: number) => (worker: number) =>
  submitOnce({
    port,
    username: `bench${String(worker % USERS).padStart(3, "0")}`,
    password: `bench${String(worker % USERS).padStart(3, "0")}-password`,
    body: MESSAGE,
    ca: slapd.pki.caPem,
  });
for (const concurrency of CONCURRENCY) {
  record(
    "bare smtp-server sessions",
    concurrency,
    await measure("bare smtp-server session", concurrency, session(Number(bare.match[1])), {
      "bare smtp-server": bare.child.pid,
    }),
  );
  record(
    "relay sessions",
    concurrency,
    await measure("relay session", concurrency, session(relayPort), {
      relay: relayPid,
      api: apiPid,
      slapd: slapdPid(),
      sink: sink.child.pid,
    }),
  );
}
const relayRssUnderLoad = rssBytes(relayPid);

// (e) memory: a fresh relay process with 1,000 idle connections (each past its greeting), so the heap the
// session runs grew does not hide the cost of a connection.
log("memory");
const idleRelayPort = await freePort();
await writeFile(
  join(temp, "relay-idle.json"),
  JSON.stringify({
    listener: "uncached",
    hostname: "relay.bench",
    api: { url: `http://127.0.0.1:${apiPort}`, token: { env: "BENCH_TOKEN" } },
    tls: { keyFile: slapd.pki.keyFile, certFile: slapd.pki.certFile },
    listen: { starttls: { host: "127.0.0.1", port: idleRelayPort } },
    upstream: { host: "127.0.0.1", port: Number(sink.match[1]) },
    limits: { maxClients: 5000, socketTimeoutMs: 120_000 },
  }),
);
const idleRelay = await spawnNode(
  "relay-idle",
  ["edge-relay/main.ts", "--config", join(temp, "relay-idle.json")],
  /relay listening/,
  { BENCH_TOKEN: TOKEN },
);
const idleRelayPid = idleRelay.child.pid as number;
await new Promise((resolve) => setTimeout(resolve, 1000));
const relayIdle = rssBytes(idleRelayPid);
const idle: net.Socket[] = [];
let greeted = 0;
for (let i = 0; i < 1000; i += 1) {
  const socket = net.connect({ port: idleRelayPort, host: "127.0.0.1" });
  socket.once("data", (chunk: Buffer) => {
    if (chunk.toString().startsWith("220")) greeted += 1;
  });
  socket.on("error", () => {});
  idle.push(socket);
  if (i % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 50));
}
const greetDeadline = Date.now() + 10_000;
while (greeted < 1000 && Date.now() < greetDeadline) await new Promise((resolve) => setTimeout(resolve, 100));
await new Promise((resolve) => setTimeout(resolve, 1000));
const relayWithIdle = rssBytes(idleRelayPid);
for (const socket of idle) socket.destroy();
const memory = {
  idleConnectionsGreeted: greeted,
  relayRssIdleBytes: relayIdle,
  relayRssWith1000IdleBytes: relayWithIdle,
  relayBytesPerIdleConnection: Math.round((relayWithIdle - relayIdle) / Math.max(1, greeted)),
  relayRssUnderLoadBytes: relayRssUnderLoad,
  apiRssUnderLoadBytes: apiRssUnderLoad,
};
log(
  `  fresh relay RSS ${(relayIdle / 2 ** 20).toFixed(1)} MiB, ${(relayWithIdle / 2 ** 20).toFixed(1)} MiB with ${greeted} idle greeted connections (${(memory.relayBytesPerIdleConnection / 1024).toFixed(1)} KiB each)`,
);

// ---------------------------------------------------------------------------------------------------------------
const ratio = (a: string, b: string, c: number) =>
  (results[a]?.[c]?.rate ?? Number.NaN) / (results[b]?.[c]?.rate ?? Number.NaN);
const targets = CONCURRENCY.map((c) => ({
  concurrency: c,
  uncachedVsRaw: ratio("API auth, uncached", "raw ldapts search+bind (StartTLS)", c),
  uncachedVsDovecotReference:
    (results["API auth, uncached"]?.[c]?.rate ?? Number.NaN) / (REFERENCE.dovecotUncached[c] as number),
  cachedVsPing: ratio("API auth, cached", "API GET /v1/ping (HTTP baseline)", c),
  relayVsBare: ratio("relay sessions", "bare smtp-server sessions", c),
  relayVsPostfixReference:
    (results["relay sessions"]?.[c]?.rate ?? Number.NaN) / (REFERENCE.postfixSessions[c] as number),
}));

const machine = {
  cpus: os.cpus().length,
  model: os.cpus()[0]?.model ?? "unknown",
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  node: process.version,
  date: new Date().toISOString(),
  runs: RUNS,
  secondsPerRun: SECONDS,
};
const output = { machine, results, targets, memory, reference: REFERENCE };
await mkdir(join(ROOT, "bench-results"), { recursive: true });
await writeFile(
  join(ROOT, "bench-results", QUICK ? "quick.json" : "latest.json"),
  `${JSON.stringify(output, null, 2)}\n`,
);
await writeFile(join(ROOT, "bench-results", QUICK ? "quick.md" : "latest.md"), markdown());
log(`\nwritten: bench-results/${QUICK ? "quick" : "latest"}.{json,md}\n`);
process.stdout.write(markdown());

function markdown(): string {
  const cpu = (r: RunResult | undefined) =>
    r
      ? Object.entries(r.cpuMsPerOp)
          .map(([name, ms]) => `${name} ${ms.toFixed(2)}`)
          .join(", ")
      : "";
  const lines = [
    `Machine: ${machine.cpus} cores (${machine.model}), ${machine.memoryGiB} GiB, Node ${machine.node}; ${machine.date}; median of ${RUNS} run(s) of ${SECONDS} s; slapd, API, relay and load generator share the machine.`,
    "",
    "| work | c | rate/s | p50 ms | p99 ms | CPU ms per op |",
    "|---|---:|---:|---:|---:|---|",
  ];
  for (const [name, byConcurrency] of Object.entries(results)) {
    for (const [c, r] of Object.entries(byConcurrency))
      lines.push(`| ${name} | ${c} | ${r.rate.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${cpu(r)} |`);
  }
  lines.push("", "| target (docs/performance.md) | c=1 | c=8 | c=32 | goal |", "|---|---:|---:|---:|---|");
  const row = (label: string, key: keyof (typeof targets)[number], goal: string) =>
    lines.push(`| ${label} | ${targets.map((t) => (t[key] as number).toFixed(2)).join(" | ")} | ${goal} |`);
  row("API auth uncached / raw ldapts search+bind", "uncachedVsRaw", "≥ 0.85");
  row("API auth uncached / Dovecot uncached (reference figures)", "uncachedVsDovecotReference", "≥ 1.5");
  row("API auth cached / GET /v1/ping", "cachedVsPing", "≥ 0.80");
  row("relay session / bare smtp-server session", "relayVsBare", "≥ 0.70 (c=8, 32)");
  row("relay session / Postfix+Dovecot (reference figures)", "relayVsPostfixReference", "> 1");
  lines.push(
    "",
    `Relay memory: a fresh relay holds ${(memory.relayRssIdleBytes / 2 ** 20).toFixed(1)} MiB RSS, ${(memory.relayRssWith1000IdleBytes / 2 ** 20).toFixed(1)} MiB with ${memory.idleConnectionsGreeted} idle connections past their greeting (${(memory.relayBytesPerIdleConnection / 1024).toFixed(1)} KiB per connection); the relay that ran the sessions holds ${(memory.relayRssUnderLoadBytes / 2 ** 20).toFixed(1)} MiB; the API ${(memory.apiRssUnderLoadBytes / 2 ** 20).toFixed(1)} MiB after the decision runs.`,
    "",
  );
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------------------------
await pool.close();
for (const child of children) child.kill("SIGTERM");
// Let the API and relay write their profiles (and close cleanly) before the directory goes away.
await Promise.all(
  children.map(
    (child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once("exit", resolve))),
  ),
);
for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
await rm(temp, { recursive: true, force: true });
process.exit(0);
