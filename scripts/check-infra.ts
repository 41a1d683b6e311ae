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
import { checkCompose } from "./check-compose.ts";
import { checkConfigExamples } from "./infra/config-examples.ts";
import { check, checkCount, notes, problems, root } from "./infra/context.ts";
import { checkDockerfiles } from "./infra/dockerfiles.ts";
import { checkKubernetesRules, checkKubernetesSchemas, checkYaml } from "./infra/kubernetes.ts";
import { checkSystemdUnits } from "./infra/systemd.ts";

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
  console.log(
    `check-infra: ${checkCount()} checks, ${problems.length} problems (${manifests.length} Kubernetes objects)`,
  );
  if (problems.length > 0) process.exit(1);
}

await main();
