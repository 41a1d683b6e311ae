/**
 * Static checks of the deployment files, offline (no Docker engine, no cluster, no network on these machines):
 *
 * - every YAML file under infra/ parses;
 * - Kubernetes manifests (infra/kubernetes/): each object against the Kubernetes OpenAPI schema shipped in the npm
 *   package kubernetes-models (compiled validators, nothing downloaded), then the rules this project keeps:
 *   non-root, read-only root file system, no privilege escalation, ALL capabilities dropped, probes on /healthz
 *   and /readyz, secrets only by reference, selectors and references that resolve, no :latest images;
 * - the configuration examples inside the ConfigMaps and wrangler.toml, with the API's and the relay's own
 *   schemas (and, for wrangler.toml, the Workers limits);
 * - Dockerfiles (infra/docker/): syntax (dockerfile-utils, the VS Code Dockerfile linter), a Node 24 base, a
 *   non-root USER, a HEALTHCHECK, `npm ci --omit=dev`, and that what they COPY and run exists;
 * - systemd units (infra/systemd/): hardening keys, then `systemd-analyze verify` when the machine has it;
 * - both: they run the built package's `smtpgate api` / `smtpgate relay` (the bin in package.json "files").
 * - the compose file (infra/compose/compose.yaml): see scripts/check-compose.ts.
 *
 *   node scripts/check-infra.ts        exit 1 when any problem is found
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { validate as validateDockerfile } from "dockerfile-utils";
import { parseAllDocuments } from "yaml";
import { parseConfig, validateConfig } from "../api/config/load.ts";
import { ConfigError } from "../lib/config/config-error.ts";
import { workersProblems } from "../api/runtime/workers/config.ts";
import { checkCompose, relayListenerProblem, SECRET_NAME } from "./check-compose.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const infra = join(root, "infra");
const problems: string[] = [];
const notes: string[] = [];
let checks = 0;

function check(ok: boolean, where: string, message: string): void {
  checks += 1;
  if (!ok) problems.push(`${where}: ${message}`);
}

async function filesUnder(dir: string, test: (name: string) => boolean): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((entry) => entry.isFile() && test(entry.name))
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

const rel = (path: string): string => relative(root, path);

// ---------------------------------------------------------------------------------------------------------------
// YAML and Kubernetes

type Json = Record<string, unknown>;
interface Manifest {
  file: string;
  doc: Json;
}

async function checkYaml(): Promise<Manifest[]> {
  const manifests: Manifest[] = [];
  for (const file of await filesUnder(infra, (name) => /\.ya?ml$/.test(name))) {
    const documents = parseAllDocuments(await readFile(file, "utf8"), { uniqueKeys: true });
    for (const document of Array.isArray(documents) ? documents : [documents]) {
      const errors = [...document.errors, ...document.warnings];
      check(errors.length === 0, rel(file), `YAML: ${errors.map((error) => error.message.split("\n")[0]).join("; ")}`);
      const value = document.toJS() as unknown;
      if (file.startsWith(join(infra, "kubernetes")) && value !== null && typeof value === "object")
        manifests.push({ file, doc: value as Json });
    }
  }
  return manifests;
}

/** The kubernetes-models class for each apiVersion/kind the manifests use. */
const MODELS: Record<string, string> = {
  "apps/v1/Deployment": "kubernetes-models/apps/v1/Deployment",
  "v1/Service": "kubernetes-models/v1/Service",
  "v1/ConfigMap": "kubernetes-models/v1/ConfigMap",
  "v1/Secret": "kubernetes-models/v1/Secret",
  "policy/v1/PodDisruptionBudget": "kubernetes-models/policy/v1/PodDisruptionBudget",
  "autoscaling/v2/HorizontalPodAutoscaler": "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler",
  "networking.k8s.io/v1/NetworkPolicy": "kubernetes-models/networking.k8s.io/v1/NetworkPolicy",
};

interface SchemaError {
  instancePath?: string;
  message?: string;
}

async function checkKubernetesSchemas(manifests: Manifest[]): Promise<void> {
  for (const { file, doc } of manifests) {
    const key = `${String(doc.apiVersion)}/${String(doc.kind)}`;
    const where = `${rel(file)} ${String(doc.kind)} ${String((doc.metadata as Json | undefined)?.name)}`;
    const module = MODELS[key];
    check(module !== undefined, where, `no schema for ${key} here (add it to MODELS in scripts/check-infra.ts)`);
    if (!module) continue;
    const Model = (await import(module)) as Record<string, new (data: unknown) => { validate(): void }>;
    const Class = Object.values(Model).find((value) => typeof value === "function") as new (data: unknown) => {
      validate(): void;
    };
    try {
      new Class(doc).validate();
      check(true, where, "");
    } catch (error) {
      const details = ((error as { errors?: SchemaError[] }).errors ?? []).map(
        (e) => `${e.instancePath || "/"} ${e.message ?? ""}`,
      );
      check(
        false,
        where,
        `not valid against the Kubernetes schema: ${details.length > 0 ? details.join("; ") : (error as Error).message}`,
      );
    }
  }
}

function labelsMatch(selector: Json | undefined, labels: Json | undefined): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([key, value]) => labels?.[key] === value);
}

function checkKubernetesRules(manifests: Manifest[]): void {
  const of = (kind: string) => manifests.filter((manifest) => manifest.doc.kind === kind);
  const deployments = of("Deployment");
  const configMaps = new Set(of("ConfigMap").map((manifest) => String((manifest.doc.metadata as Json).name)));
  check(deployments.length >= 2, "infra/kubernetes", "a Deployment each for the API and the relay");
  for (const kind of ["Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"]) {
    check(of(kind).length >= deployments.length, "infra/kubernetes", `a ${kind} for each Deployment`);
  }

  for (const { file, doc } of deployments) {
    const name = String((doc.metadata as Json).name);
    const where = `${rel(file)} Deployment ${name}`;
    const spec = doc.spec as Json;
    const template = spec.template as Json;
    const pod = template.spec as Json;
    const podSecurity = (pod.securityContext ?? {}) as Json;
    check(
      labelsMatch((spec.selector as Json).matchLabels as Json, (template.metadata as Json).labels as Json),
      where,
      "selector.matchLabels must match the template's labels",
    );
    check(podSecurity.runAsNonRoot === true, where, "securityContext.runAsNonRoot: true");
    check(
      (podSecurity.seccompProfile as Json | undefined)?.type === "RuntimeDefault",
      where,
      "securityContext.seccompProfile.type: RuntimeDefault",
    );
    check(
      pod.automountServiceAccountToken === false,
      where,
      "automountServiceAccountToken: false (the service needs no Kubernetes API access)",
    );
    for (const container of pod.containers as Json[]) {
      const at = `${where} container ${String(container.name)}`;
      const security = (container.securityContext ?? {}) as Json;
      check(security.readOnlyRootFilesystem === true, at, "securityContext.readOnlyRootFilesystem: true");
      check(security.allowPrivilegeEscalation === false, at, "securityContext.allowPrivilegeEscalation: false");
      check(
        ((security.capabilities as Json | undefined)?.drop as string[] | undefined)?.includes("ALL") === true,
        at,
        "securityContext.capabilities.drop: [ALL]",
      );
      check(
        !/:latest$|^[^:]+$/.test(String(container.image)),
        at,
        `image ${String(container.image)}: pin a version, not latest`,
      );
      const probePath = (probe: unknown): string | undefined =>
        ((probe as Json | undefined)?.httpGet as Json | undefined)?.path as string | undefined;
      // The relay's /healthz answers 503 while its upstream is down; its liveness is /livez (a restart cures no
      // dependency).
      const liveness = name === "smtpgate-relay" ? "/livez" : "/healthz";
      check(probePath(container.livenessProbe) === liveness, at, `livenessProbe: GET ${liveness}`);
      const readiness = probePath(container.readinessProbe);
      check(
        readiness === "/readyz" || readiness === "/healthz",
        at,
        "readinessProbe: GET /readyz (or /healthz where the service has no readiness endpoint)",
      );
      if (name === "smtpgate-api")
        check(readiness === "/readyz", at, "the API's readinessProbe is GET /readyz (directories reachable)");
      const portNames = new Set(((container.ports ?? []) as Json[]).map((port) => port.name));
      for (const probe of [container.livenessProbe, container.readinessProbe, container.startupProbe]) {
        const port = ((probe as Json | undefined)?.httpGet as Json | undefined)?.port;
        if (typeof port === "string")
          check(portNames.has(port), at, `probe port "${port}" is not a named container port`);
      }
      for (const variable of (container.env ?? []) as Json[]) {
        if (!SECRET_NAME.test(String(variable.name))) continue;
        const reference = (variable.valueFrom as Json | undefined)?.secretKeyRef as Json | undefined;
        check(
          variable.value === undefined && reference?.name !== undefined && reference.key !== undefined,
          at,
          `env ${String(variable.name)}: secrets only by secretKeyRef, never inline`,
        );
      }
      const args = (container.args ?? []) as string[];
      const configPath = args[args.indexOf("--config") + 1];
      if (args.includes("--config") && configPath) {
        const mounts = (container.volumeMounts ?? []) as Json[];
        const mount = mounts.find(
          (m) => configPath === m.mountPath || configPath.startsWith(`${String(m.mountPath)}/`),
        );
        const volume = ((pod.volumes ?? []) as Json[]).find((v) => v.name === mount?.name);
        const configMap = (volume?.configMap as Json | undefined)?.name;
        check(configMap !== undefined, at, `--config ${configPath} is not on a ConfigMap volume`);
      }
    }
    for (const volume of (pod.volumes ?? []) as Json[]) {
      const configMap = (volume.configMap as Json | undefined)?.name;
      if (configMap !== undefined)
        check(
          configMaps.has(String(configMap)),
          where,
          `volume ${String(volume.name)}: ConfigMap ${String(configMap)} is not defined in infra/kubernetes`,
        );
    }
  }

  const deploymentNamed = (name: unknown) =>
    deployments.find((manifest) => (manifest.doc.metadata as Json).name === name);
  const podLabels = (manifest: Manifest) =>
    (((manifest.doc.spec as Json).template as Json).metadata as Json).labels as Json;
  for (const { file, doc } of of("Service")) {
    const where = `${rel(file)} Service ${String((doc.metadata as Json).name)}`;
    const spec = doc.spec as Json;
    const target = deployments.find((manifest) => labelsMatch(spec.selector as Json, podLabels(manifest)));
    check(target !== undefined, where, "its selector matches no Deployment's Pods");
    if (!target) continue;
    const containerPorts = (((target.doc.spec as Json).template as Json).spec as Json).containers as Json[];
    const names = new Set(
      containerPorts.flatMap((container) => ((container.ports ?? []) as Json[]).map((port) => port.name)),
    );
    for (const port of spec.ports as Json[]) {
      if (typeof port.targetPort === "string")
        check(
          names.has(port.targetPort),
          where,
          `targetPort "${port.targetPort}" is not a container port of ${String((target.doc.metadata as Json).name)}`,
        );
    }
  }
  for (const { file, doc } of of("PodDisruptionBudget")) {
    const where = `${rel(file)} PodDisruptionBudget ${String((doc.metadata as Json).name)}`;
    check(
      deployments.some((manifest) =>
        labelsMatch(((doc.spec as Json).selector as Json).matchLabels as Json, podLabels(manifest)),
      ),
      where,
      "its selector matches no Deployment's Pods",
    );
  }
  for (const { file, doc } of of("HorizontalPodAutoscaler")) {
    const where = `${rel(file)} HorizontalPodAutoscaler ${String((doc.metadata as Json).name)}`;
    const target = (doc.spec as Json).scaleTargetRef as Json;
    check(
      target.kind === "Deployment" && deploymentNamed(target.name) !== undefined,
      where,
      `scaleTargetRef ${String(target.kind)}/${String(target.name)} is not defined here`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Configuration examples

async function checkConfigExamples(manifests: Manifest[]): Promise<void> {
  const configMapData = (name: string): Json | undefined =>
    manifests.find((manifest) => manifest.doc.kind === "ConfigMap" && (manifest.doc.metadata as Json).name === name)
      ?.doc.data as Json | undefined;

  const apiConfig = configMapData("smtpgate-api-config")?.["smtpgate.yaml"];
  check(
    typeof apiConfig === "string",
    "infra/kubernetes/api-config.yaml",
    "ConfigMap smtpgate-api-config holds smtpgate.yaml",
  );
  let apiListeners: Record<string, { hostAccessTable: unknown[] }> = {};
  if (typeof apiConfig === "string") {
    try {
      apiListeners = parseConfig(apiConfig, "smtpgate.yaml").listeners;
      check(true, "", "");
    } catch (error) {
      check(false, "infra/kubernetes/api-config.yaml smtpgate.yaml", (error as Error).message);
    }
  }

  const relayConfig = configMapData("smtpgate-relay-config")?.["relay.yaml"];
  check(
    typeof relayConfig === "string",
    "infra/kubernetes/relay-config.yaml",
    "ConfigMap smtpgate-relay-config holds relay.yaml",
  );
  if (typeof relayConfig === "string") {
    const relayModule = join(root, "edge-relay", "config.ts");
    if (!existsSync(relayModule)) {
      notes.push(
        "relay.yaml in the relay ConfigMap: not checked against the relay's schema (edge-relay/config.ts does not exist yet)",
      );
    } else {
      const { validateRelayConfig } = (await import(relayModule)) as {
        validateRelayConfig: (document: unknown, source: string) => unknown;
      };
      const { parse } = await import("yaml");
      try {
        const relay = validateRelayConfig(parse(relayConfig), "relay.yaml") as { listener: string };
        check(true, "", "");
        const listenerProblem = relayListenerProblem(apiListeners, relay.listener);
        check(listenerProblem === undefined, "infra/kubernetes/relay-config.yaml relay.yaml", listenerProblem ?? "");
      } catch (error) {
        check(false, "infra/kubernetes/relay-config.yaml relay.yaml", (error as Error).message);
      }
    }
  }

  // wrangler.toml: the example configuration must be valid and deployable on Workers.
  const { unstable_readConfig } = await import("wrangler");
  const wrangler = unstable_readConfig({ config: join(root, "wrangler.toml") });
  check(
    existsSync(resolve(root, String(wrangler.main))),
    "wrangler.toml",
    `main ${String(wrangler.main)} does not exist`,
  );
  check(
    wrangler.compatibility_flags.includes("nodejs_compat"),
    "wrangler.toml",
    "compatibility_flags needs nodejs_compat (node:net/node:tls for ldapts)",
  );
  const workerConfig = (wrangler.vars as Json).SMTPGATE_CONFIG;
  try {
    const config =
      typeof workerConfig === "string"
        ? parseConfig(workerConfig, "wrangler.toml SMTPGATE_CONFIG")
        : validateConfig(workerConfig, "wrangler.toml SMTPGATE_CONFIG");
    const limits = workersProblems(config);
    check(
      limits.length === 0,
      "wrangler.toml SMTPGATE_CONFIG",
      `asks for what Workers cannot do: ${limits.map((limit) => `${limit.path}: ${limit.message}`).join("; ")}`,
    );
  } catch (error) {
    check(false, "wrangler.toml", error instanceof ConfigError ? error.message : String(error));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Dockerfiles

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** Instructions of a Dockerfile, continuation lines joined, comments dropped. */
function instructions(text: string): Instruction[] {
  const result: Instruction[] = [];
  let pending = "";
  let start = 0;
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (pending === "" && (line === "" || line.startsWith("#"))) return;
    if (pending === "") start = index + 1;
    if (line.startsWith("#")) return;
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const full = pending + line;
    pending = "";
    const match = /^(\S+)\s*(.*)$/.exec(full);
    if (match) result.push({ keyword: (match[1] as string).toUpperCase(), args: match[2] as string, line: start });
  });
  return result;
}

function words(args: string): string[] {
  const trimmed = args.trim();
  if (trimmed.startsWith("[")) {
    try {
      return JSON.parse(trimmed) as string[];
    } catch {
      return [];
    }
  }
  return trimmed.split(/\s+/).filter((word) => word !== "");
}

async function checkDockerfiles(): Promise<void> {
  const dockerfiles = await filesUnder(join(infra, "docker"), (name) => name.endsWith(".Dockerfile"));
  check(dockerfiles.length >= 2, "infra/docker", "a Dockerfile each for the API and the relay");
  for (const file of dockerfiles) {
    const where = rel(file);
    const text = await readFile(file, "utf8");
    for (const diagnostic of validateDockerfile(text)) {
      check(false, `${where}:${diagnostic.range.start.line + 1}`, `Dockerfile: ${diagnostic.message}`);
    }
    const all = instructions(text);
    const stages = all.filter((instruction) => instruction.keyword === "FROM");
    check(
      stages.length > 0 && stages.every((stage) => /^node:24[-.\w]*(\s|$)/.test(stage.args)),
      where,
      "every stage FROM node:24-* (the Node.js the package is built and tested with)",
    );
    const finalStage = all.slice(all.lastIndexOf(stages.at(-1) as Instruction));
    const user = finalStage
      .filter((instruction) => instruction.keyword === "USER")
      .at(-1)
      ?.args.trim();
    check(user !== undefined && !/^(root|0)(:|$)/.test(user), where, "the final stage runs as a non-root USER");
    check(
      finalStage.some((instruction) => instruction.keyword === "HEALTHCHECK" && !/^NONE/i.test(instruction.args)),
      where,
      "a HEALTHCHECK in the final stage",
    );
    // A build stage may install the dev dependencies (TypeScript); what the image ships holds production ones only.
    const npmCi = finalStage.filter(
      (instruction) => instruction.keyword === "RUN" && /\bnpm ci\b/.test(instruction.args),
    );
    check(
      npmCi.length > 0 && npmCi.every((instruction) => instruction.args.includes("--omit=dev")),
      where,
      "the final stage's dependencies with npm ci --omit=dev",
    );
    check(
      all.some((instruction) => instruction.keyword === "RUN" && /\bnpm pack\b/.test(instruction.args)) &&
        finalStage.some(
          (instruction) => instruction.keyword === "RUN" && /\btar\b.*smtpgate\.tgz/.test(instruction.args),
        ),
      where,
      "the image runs the built package: npm pack in a build stage, its tarball unpacked in the final stage",
    );
    for (const copy of all.filter((instruction) => instruction.keyword === "COPY" || instruction.keyword === "ADD")) {
      const parts = words(copy.args);
      if (parts.some((part) => part.startsWith("--from="))) continue;
      const sources = parts.filter((part) => !part.startsWith("--")).slice(0, -1);
      for (const source of sources)
        check(
          existsSync(join(root, source)),
          `${where}:${copy.line}`,
          `COPY source ${source} does not exist in the repository`,
        );
    }
    const entrypoint = words(finalStage.find((instruction) => instruction.keyword === "ENTRYPOINT")?.args ?? "[]");
    checkPackageCommand(entrypoint, "", where, "ENTRYPOINT");
    check(
      existsSync(`${file}.dockerignore`),
      where,
      `${basename(file)}.dockerignore keeps the build context to what the image needs`,
    );
  }
  notes.push(
    "Dockerfiles: not built (no Docker engine here); syntax, base image, user, health check, COPY sources and entry point checked statically",
  );
}

// ---------------------------------------------------------------------------------------------------------------
// The built package, as images and units run it

/** Where the systemd units expect the package: `npm install --prefix /opt/smtpgate smtpgate`. */
const INSTALLED_PACKAGE = "/opt/smtpgate/node_modules/smtpgate/";
const PACKAGE_COMMANDS = ["api", "relay"];

/**
 * A command line must run the package's `smtpgate` bin (under `installedAt`) with the API's or the relay's
 * subcommand: the compiled package, never the checkout's .ts files (Node refuses to strip types under
 * node_modules, and an older Node.js reaches the bin's version check instead of failing on a .ts extension).
 */
function checkPackageCommand(command: readonly string[], installedAt: string, where: string, key: string): void {
  const manifest = packageManifest();
  const bin = manifest.bin?.smtpgate;
  const index = command.findIndex((part) => bin !== undefined && part === `${installedAt}${bin}`);
  check(
    index >= 0,
    where,
    `${key} runs ${command.join(" ") || "(nothing)"}: it must run the package's bin ${installedAt}${bin ?? "(no bin.smtpgate in package.json)"}`,
  );
  if (index < 0 || bin === undefined) return;
  check(existsSync(join(root, bin)), where, `${key}: ${bin} does not exist in the repository`);
  check(
    (manifest.files ?? []).some((entry) => bin.startsWith(entry.replace(/\/?$/, "/")) || bin === entry),
    where,
    `${key}: ${bin} is not in package.json "files", so the package lacks it`,
  );
  check(
    PACKAGE_COMMANDS.includes(command[index + 1] ?? ""),
    where,
    `${key}: the subcommand after ${bin} must be one of ${PACKAGE_COMMANDS.join(", ")}`,
  );
}

let manifestCache: { bin?: Record<string, string>; files?: string[] } | undefined;
function packageManifest(): { bin?: Record<string, string>; files?: string[] } {
  manifestCache ??= JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as typeof manifestCache;
  return manifestCache ?? {};
}

// ---------------------------------------------------------------------------------------------------------------
// systemd units

const execFileAsync = promisify(execFile);

async function checkSystemdUnits(): Promise<void> {
  const units = await filesUnder(join(infra, "systemd"), (name) => name.endsWith(".service"));
  check(units.length >= 2, "infra/systemd", "a unit each for the API and the relay");
  for (const file of units) {
    const where = rel(file);
    const settings = new Map<string, string[]>();
    for (const line of (await readFile(file, "utf8")).split("\n")) {
      const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
      if (match) settings.set(match[1] as string, [...(settings.get(match[1] as string) ?? []), match[2] as string]);
    }
    const value = (key: string): string | undefined => settings.get(key)?.at(-1);
    check(
      value("DynamicUser") === "yes" || (value("User") ?? "root") !== "root",
      where,
      "DynamicUser=yes or a dedicated User=",
    );
    for (const [key, wanted] of [
      ["NoNewPrivileges", "yes"],
      ["ProtectSystem", "strict"],
      ["ProtectHome", "yes"],
      ["PrivateTmp", "yes"],
      ["PrivateDevices", "yes"],
    ] as const) {
      check(value(key) === wanted, where, `${key}=${wanted}`);
    }
    check(settings.has("EnvironmentFile"), where, "secrets from an EnvironmentFile");
    checkPackageCommand(value("ExecStart")?.split(/\s+/) ?? [], INSTALLED_PACKAGE, where, "ExecStart");
  }

  try {
    await execFileAsync("systemd-analyze", ["--version"]);
  } catch {
    notes.push("systemd units: systemd-analyze is not installed here; keys checked statically only");
    return;
  }
  let output: string;
  try {
    // Unknown keys are only warnings (exit 0): any output at all counts.
    const { stdout, stderr } = await execFileAsync("systemd-analyze", ["verify", "--man=no", ...units]);
    output = `${stdout}${stderr}`;
  } catch (error) {
    output = `${(error as { stdout?: string }).stdout ?? ""}${(error as { stderr?: string }).stderr ?? ""}`;
  }
  const lines = output.split("\n").filter((line) => line.trim() !== "");
  // The units name /usr/bin/node and /opt/smtpgate: where this machine has no /usr/bin/node, that line is expected.
  const real = lines.filter(
    (line) => !(/Command \/usr\/bin\/node is not executable/.test(line) && !existsSync("/usr/bin/node")),
  );
  check(real.length === 0, "infra/systemd", `systemd-analyze verify: ${real.join("; ")}`);
  if (real.length === 0)
    notes.push(
      `systemd units: systemd-analyze verify passed${lines.length > 0 ? " (apart from /usr/bin/node missing on this machine)" : ""}`,
    );
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const manifests = await checkYaml();
  await checkKubernetesSchemas(manifests);
  checkKubernetesRules(manifests);
  await checkConfigExamples(manifests);
  await checkDockerfiles();
  await checkSystemdUnits();
  await checkCompose(root, check);
  notes.push("compose: not run (no Docker engine or compose plugin here); checked statically");
  notes.push(
    "Kubernetes: validated against the schemas in kubernetes-models (types, required fields, enums); unknown fields are not flagged, and nothing was applied to a cluster",
  );

  for (const note of notes) console.log(`note: ${note}`);
  for (const problem of problems) console.error(`problem: ${problem}`);
  console.log(`check-infra: ${checks} checks, ${problems.length} problems (${manifests.length} Kubernetes objects)`);
  if (problems.length > 0) process.exit(1);
}

await main();
