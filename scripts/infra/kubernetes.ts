// Kubernetes manifests: parsed, checked against the kubernetes-models schemas, and the rules this project keeps.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { SECRET_NAME } from "../check-compose.ts";
import { infra, check, filesUnder, rel } from "./context.ts";

export type Json = Record<string, unknown>;
export interface Manifest {
  file: string;
  doc: Json;
}

export async function checkYaml(): Promise<Manifest[]> {
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

export async function checkKubernetesSchemas(manifests: Manifest[]): Promise<void> {
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

export function checkKubernetesRules(manifests: Manifest[]): void {
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
