/**
 * The smtpgate benchmark: `npm run bench` (add `-- --quick` for one short run per figure).
 *
 * Starts its own slapd (200 users), the decision API (with its Dovecot-protocol front) and the edge relay as child
 * processes, an upstream sink, a bare smtp-server baseline, and the peers: private Dovecot auth services and
 * Postfix instances. It then measures in one run, as ratios against baselines and peers measured in the same run
 * (docs/performance.md): raw ldapts search+bind vs API auth decisions (uncached, cached), the authenticated ping
 * vs cached decisions, certificate decisions, SASL decisions over the Dovecot protocol (Dovecot vs smtpgate's
 * front), full relay sessions vs bare smtp-server sessions, Postfix sessions with smtpgate's front or Dovecot for
 * SASL beside the relay, the same sessions through nginx's mail proxy asking the API (auth_http; when nginx is
 * installed), and relay memory with 1,000 idle connections. Every figure is the median of 3 runs. Writes
 * bench-results/latest.json and bench-results/latest.md.
 *
 * What it runs against: config.ts; how a figure is measured: measure.ts; the parts with their own module:
 * raw-ldap.ts, brute-force.ts, parts/*.ts; the idle connections: idle-memory.ts; the ratios and files:
 * report.ts. The slapd, Dovecot, Postfix, PKI, CRL server and process handling come from dev/.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { Pool } from "undici";
import { startDirectoryWithPki } from "../../dev/directory-with-pki.ts";
import { startNginxMail, type NginxMail } from "../../dev/nginx/index.ts";
import { freePort } from "../../dev/ports.ts";
import { startNodeProcess, type NodeProcess } from "../../dev/processes.ts";
import { SEED } from "../../dev/slapd/index.ts";
import { authBody, benchApiConfig, benchRelayConfig, benchUser, benchUsersLdif, certBody, USERS } from "./config.ts";
import { benchArguments } from "./arguments.ts";
import { benchBruteForce, type SprayResult } from "./brute-force.ts";
import { measureIdleConnections } from "./idle-memory.ts";
import { figure, rssBytes, type MeasureFigure, type RunResult } from "./measure.ts";
import { writeReport, type Results } from "./report.ts";
import { messageOfSize, submitOnce } from "./smtp-client.ts";
import { measureRawLdap } from "./raw-ldap.ts";
import type { PartContext } from "./parts/context.ts";
import { benchDovecot, startDovecotPeers, type InFlightMemory } from "./parts/dovecot.ts";
import { benchPostfix } from "./parts/postfix.ts";
import { benchSessions } from "./parts/sessions.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const { QUICK, ONLY, BASELINE_ROOT, wanted } = benchArguments(process.argv);
const RUNS = QUICK ? 1 : 3;
const SECONDS = QUICK ? 1 : 2.5;
const CONCURRENCY = [1, 8, 32];
const TOKEN = "bench-token-0123456789abcdef";
const MESSAGE = messageOfSize(10 * 1024);
const IDLE_CONNECTIONS = 1000;

const temp = await mkdtemp(join(os.tmpdir(), "smtpgate-bench-"));
const processes: NodeProcess[] = [];

function log(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** Starts `node ARGS` from the repository root, its output in the temp folder, until `ready` appears in it. */
async function startNode(
  name: string,
  args: string[],
  ready: RegExp,
  env: Record<string, string> = {},
): Promise<NodeProcess> {
  const started = await startNodeProcess(args, { ready, env, cwd: ROOT, logFile: join(temp, `${name}.log`) });
  processes.push(started);
  return started;
}

const measure: MeasureFigure = (label, concurrency, operation, pids) =>
  figure(label, concurrency, operation, pids, { runs: RUNS, seconds: SECONDS, warmUpSeconds: QUICK ? 0.3 : 0.7 });

// ---------------------------------------------------------------------------------------------------------------
log(`smtpgate benchmark: ${RUNS} run(s) of ${SECONDS} s per figure, concurrency ${CONCURRENCY.join("/")}`);
// cn=Monitor counts the binds slapd completed (the brute-force spray).
const directory = await startDirectoryWithPki({ extraLdif: await benchUsersLdif(), monitor: true });
const { slapd, pki, crls } = directory;

// The sink first: the API's configuration names it as the upstream nginx hands sessions to.
const sink = await startNode("sink", ["scripts/bench/sink-process.ts"], /PORT (\d+)/);
const sinkPort = Number(sink.ready[1]);
const apiPort = await freePort();
// smtpgate's Dovecot-protocol front, in the API process (`smtpgate api` serves the config's fronts section).
const frontPorts = { uncached: await freePort(), cached: await freePort() };
await writeFile(
  join(temp, "api.json"),
  JSON.stringify(
    benchApiConfig({ slapd, pki, crlBaseUrl: crls.baseUrl, port: apiPort, sinkPort, dovecotFrontPorts: frontPorts }),
  ),
);
// SMTPGATE_BENCH_PROFILE=DIR writes a V8 CPU profile of the API and the relay into DIR (for finding hot paths).
const profile = process.env.SMTPGATE_BENCH_PROFILE
  ? ["--cpu-prof", `--cpu-prof-dir=${process.env.SMTPGATE_BENCH_PROFILE}`]
  : [];
const api = await startNode(
  "api",
  [...profile, "cli/main.ts", "api", "--config", join(temp, "api.json")],
  // The API's own line (the fronts log "listening" too, before it).
  /"msg":"listening","url"/,
  { BENCH_BIND_PW: SEED.servicePassword, BENCH_TOKEN: TOKEN },
);
const apiPid = api.child.pid as number;
const slapdPid = () => slapd.pid;

const pool = new Pool(`http://127.0.0.1:${apiPort}`, { connections: 64, pipelining: 1, keepAliveTimeout: 60_000 });
interface ApiUnderTest {
  /** Appended to figure names: "" for this checkout, " (baseline)" for --baseline's. */
  suffix: string;
  pool: Pool;
  pid: number;
}
const apis: ApiUnderTest[] = [{ suffix: "", pool, pid: apiPid }];
/** Pools of the other API processes a part starts (closed at the end). */
const extraPools: Pool[] = [];
if (BASELINE_ROOT !== undefined) {
  const port = await freePort();
  await writeFile(
    join(temp, "api-baseline.json"),
    JSON.stringify(benchApiConfig({ slapd, pki, crlBaseUrl: crls.baseUrl, port, sinkPort, directBind: false })),
  );
  const baseline = await startNodeProcess(["api/runtime/node/main.ts", "--config", join(temp, "api-baseline.json")], {
    ready: /"msg":"listening"/,
    env: { BENCH_BIND_PW: SEED.servicePassword, BENCH_TOKEN: TOKEN },
    cwd: BASELINE_ROOT,
    logFile: join(temp, "api-baseline.log"),
  });
  processes.push(baseline);
  const baselinePool = new Pool(`http://127.0.0.1:${port}`, {
    connections: 64,
    pipelining: 1,
    keepAliveTimeout: 60_000,
  });
  apis.push({ suffix: " (baseline)", pool: baselinePool, pid: baseline.child.pid as number });
}
const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
async function post(path: string, body: string, check: (text: string) => boolean, through: Pool = pool): Promise<void> {
  const response = await through.request({ method: "POST", path, headers, body });
  const text = await response.body.text();
  if (response.statusCode !== 200 || !check(text))
    throw new Error(`${path}: ${response.statusCode} ${text.slice(0, 200)}`);
}
const allowed = (text: string) => text.includes('"verdict":"allow"');

const results: Results = {};
const record = (name: string, concurrency: number, result: RunResult) => ((results[name] ??= {})[concurrency] = result);

// (a) baselines: the directory's limit (raw ldapts, same StartTLS as the API) and the HTTP stack's.
log("baselines");
if (wanted("raw"))
  for (const concurrency of CONCURRENCY)
    record("raw ldapts search+bind (StartTLS)", concurrency, await measureRawLdap(slapd, concurrency, measure));
if (wanted("ping")) {
  for (const concurrency of CONCURRENCY) {
    for (const target of apis)
      record(
        `API GET /v1/ping (HTTP baseline)${target.suffix}`,
        concurrency,
        await measure(
          `API GET /v1/ping${target.suffix}`,
          concurrency,
          async () => {
            const response = await target.pool.request({ method: "GET", path: "/v1/ping", headers });
            await response.body.text();
            if (response.statusCode !== 200) throw new Error(`ping ${response.statusCode}`);
          },
          { api: target.pid },
        ),
      );
  }
}
// (b) auth decisions, (c) certificate decisions
log("API decisions");
if (wanted("auth")) {
  let user = 0;
  for (const concurrency of CONCURRENCY) {
    for (const target of apis)
      record(
        `API auth, uncached${target.suffix}`,
        concurrency,
        await measure(
          `API auth uncached${target.suffix}`,
          concurrency,
          () => post("/v1/decide/auth", authBody("uncached", user++ % USERS), allowed, target.pool),
          { api: target.pid, slapd: slapdPid() },
        ),
      );
    record(
      "API auth, uncached, direct bind",
      concurrency,
      await measure(
        "API auth uncached, direct bind",
        concurrency,
        () => post("/v1/decide/auth", authBody("direct", user++ % USERS), allowed),
        { api: apiPid, slapd: slapdPid() },
      ),
    );
  }
  for (const target of apis)
    for (let i = 0; i < USERS; i += 1) await post("/v1/decide/auth", authBody("cached", i), allowed, target.pool);
  for (const concurrency of CONCURRENCY) {
    for (const target of apis)
      record(
        `API auth, cached${target.suffix}`,
        concurrency,
        await measure(
          `API auth cached${target.suffix}`,
          concurrency,
          () => post("/v1/decide/auth", authBody("cached", user++ % USERS), allowed, target.pool),
          { api: target.pid, slapd: slapdPid() },
        ),
      );
  }
}
if (wanted("tls")) {
  const certificateBody = certBody(pki);
  for (const concurrency of CONCURRENCY) {
    record(
      "API certificate (tls) decisions",
      concurrency,
      await measure("API tls decisions", concurrency, () => post("/v1/decide/tls", certificateBody, allowed), {
        api: apiPid,
        slapd: slapdPid(),
      }),
    );
  }
}
const apiRssUnderLoad = rssBytes(apiPid);
// (c') the brute-force limiter: its cost per decision (off, memory, Redis) and a spray held at the threshold.
let spray: SprayResult | null = null;
if (wanted("bruteforce")) {
  spray = await benchBruteForce({
    slapd,
    temp,
    concurrency: CONCURRENCY,
    quick: QUICK,
    api: { pool, pid: apiPid },
    apiConfig: benchApiConfig({ slapd, pki, crlBaseUrl: crls.baseUrl, port: apiPort, sinkPort }),
    port: await freePort(),
    startApi: async (name, file) => {
      const started = await startNode(name, ["api/runtime/node/main.ts", "--config", file], /"msg":"listening"/, {
        BENCH_BIND_PW: SEED.servicePassword,
        BENCH_TOKEN: TOKEN,
      });
      const port = JSON.parse(await readFile(file, "utf8")).api.listen.port as number;
      const through = new Pool(`http://127.0.0.1:${port}`, {
        connections: 64,
        pipelining: 1,
        keepAliveTimeout: 60_000,
      });
      extraPools.push(through);
      return { pid: started.child.pid as number, pool: through };
    },
    measure,
    record,
    post,
    log,
    headers,
  });
}

/** A relay child process in front of the API and the sink (config.ts), once it listens. */
const startRelay: PartContext["startRelay"] = async (name, options, nodeOptions = []) => {
  const [starttlsPort, healthPort] = [await freePort(), options.health ? await freePort() : undefined];
  const file = join(temp, `${name}.json`);
  const { health: _health, ...settings } = options;
  await writeFile(
    file,
    JSON.stringify(
      benchRelayConfig({ apiPort, slapd, sinkPort, starttlsPort, ...settings, ...(healthPort ? { healthPort } : {}) }),
    ),
  );
  const started = await startNode(name, [...nodeOptions, "edge-relay/main.ts", "--config", file], /relay listening/, {
    BENCH_TOKEN: TOKEN,
  });
  return { port: starttlsPort, pid: started.child.pid as number };
};

const parts: PartContext = {
  slapd,
  concurrency: CONCURRENCY,
  quick: QUICK,
  measure,
  record,
  log,
  api: { pid: apiPid, port: apiPort },
  sink: { port: sinkPort, pid: sink.child.pid },
  startRelay,
  session: (port) => (worker) =>
    submitOnce({
      port,
      username: benchUser(worker % USERS),
      password: `${benchUser(worker % USERS)}-password`,
      body: MESSAGE,
      ca: slapd.pki.caPem,
    }),
};
// (c'') SASL decisions over the Dovecot protocol: Dovecot itself vs smtpgate's front in the API process.
const dovecotPeers = wanted("dovecot") || wanted("postfix") ? await startDovecotPeers(slapd) : null;
let inFlight: InFlightMemory | null = null;
if (dovecotPeers && wanted("dovecot")) inFlight = await benchDovecot({ ...parts, frontPorts }, dovecotPeers);
// (d) relay sessions vs a bare smtp-server
let relayRssUnderLoad = 0;
if (wanted("sessions"))
  relayRssUnderLoad = await benchSessions({
    ...parts,
    relayNodeOptions: profile,
    startNode: async (name, args, ready) => {
      const started = await startNode(name, args, ready);
      return { ready: started.ready, pid: started.child.pid as number };
    },
  });
// (d'') Postfix submission sessions with smtpgate's front or Dovecot for SASL, and the relay beside them.
if (dovecotPeers && wanted("postfix"))
  await benchPostfix({ ...parts, frontPort: frontPorts.uncached, dovecot: dovecotPeers.uncached });
// (d') the same sessions through nginx's mail proxy (one worker process, like the one relay process), which asks
// GET /v1/nginx/auth/uncached and hands the session to the sink with XCLIENT.
let nginx: NginxMail | null = null;
if (wanted("nginx") && existsSync("/usr/sbin/nginx")) {
  const clientCaFile = join(temp, "client-ca.pem");
  await writeFile(clientCaFile, `${pki.root.pem}${pki.intermediate.pem}`);
  nginx = await startNginxMail({
    apiUrl: `http://127.0.0.1:${apiPort}`,
    apiToken: TOKEN,
    listener: "uncached",
    certFile: slapd.pki.certFile,
    keyFile: slapd.pki.keyFile,
    clientCaFile,
  });
  const nginxWorker = nginx.workerPids()[0];
  for (const concurrency of CONCURRENCY) {
    record(
      "nginx + smtpgate sessions",
      concurrency,
      await measure("nginx + smtpgate session", concurrency, parts.session(nginx.ports.starttls), {
        nginx: nginxWorker,
        api: apiPid,
        slapd: slapdPid(),
        sink: sink.child.pid,
      }),
    );
  }
} else if (wanted("nginx")) log("  nginx is not installed (scripts/setup.sh): no nginx sessions");

// (e) memory: a fresh relay process with 1,000 idle connections (each past its greeting), so the heap the
// session runs grew does not hide the cost of a connection; and the report. Whole runs only (not with --only).
if (ONLY === null) {
  log("memory");
  const idleRelay = await startRelay("relay-idle", { socketTimeoutMs: 120_000 });
  const idle = await measureIdleConnections(idleRelay, IDLE_CONNECTIONS);
  const memory = {
    idleConnectionsGreeted: idle.idleConnectionsGreeted,
    relayRssIdleBytes: idle.relayRssIdleBytes,
    relayRssWith1000IdleBytes: idle.relayRssWithIdleBytes,
    relayBytesPerIdleConnection: idle.relayBytesPerIdleConnection,
    relayRssUnderLoadBytes: relayRssUnderLoad,
    apiRssUnderLoadBytes: apiRssUnderLoad,
    inFlight,
  };
  log(
    `  fresh relay RSS ${(memory.relayRssIdleBytes / 2 ** 20).toFixed(1)} MiB, ${(memory.relayRssWith1000IdleBytes / 2 ** 20).toFixed(1)} MiB with ${memory.idleConnectionsGreeted} idle greeted connections (${(memory.relayBytesPerIdleConnection / 1024).toFixed(1)} KiB each)`,
  );

  // ---------------------------------------------------------------------------------------------------------------
  const name = QUICK ? "quick" : "latest";
  const markdown = await writeReport(
    { results, memory, spray, concurrency: CONCURRENCY, runs: RUNS, seconds: SECONDS },
    join(ROOT, "bench-results"),
    name,
  );
  log(`\nwritten: bench-results/${name}.{json,md}\n`);
  process.stdout.write(markdown);
}

await Promise.all([...apis.map((target) => target.pool), ...extraPools].map((through) => through.close()));
await nginx?.stop();
await dovecotPeers?.close();
// Let the API and relay write their profiles (and close cleanly) before the directory goes away.
await Promise.all(processes.map((started) => started.stop()));
await directory.close().catch(() => {});
await rm(temp, { recursive: true, force: true });
process.exit(0);
