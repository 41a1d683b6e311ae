/**
 * Checks the Worker bundle that `wrangler deploy --dry-run --outdir dist/worker` wrote (npm run build:worker):
 * prints its size, raw and gzipped, and runs exactly that bundle in workerd (wrangler's test harness with
 * prebuiltWorkerDir, offline) to prove it starts and decides: trust anchors parsed with @peculiar/x509 at
 * start-up (reflect-metadata must come first in the bundle, or the import throws), a certificate judged per
 * request. No directory is contacted: the certificates used are refused before any LDAP query.
 *
 *   node scripts/check-worker-bundle.ts [dist/worker]
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { createTestHarness } from "wrangler";
import { generateClientPki } from "../dev/client-pki/index.ts";

process.env.WRANGLER_SEND_METRICS ??= "false";
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";

const TOKEN = "bundle-check-token-0123456789";
const outdir = process.argv[2] ?? "dist/worker";

async function main(): Promise<void> {
  const files = (await readdir(outdir)).filter((name) => name.endsWith(".js"));
  let raw = 0;
  let gzipped = 0;
  for (const name of files) {
    const body = await readFile(join(outdir, name));
    raw += (await stat(join(outdir, name))).size;
    gzipped += gzipSync(body, { level: 9 }).length;
  }
  const kib = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`;
  console.log(
    `worker bundle ${outdir}: ${files.join(", ")}: ${kib(raw)} raw, ${kib(gzipped)} gzipped (Workers limits: 3 MiB gzipped on Free, 10 MiB on Paid)`,
  );

  const pki = await generateClientPki();
  const config = {
    // A closed loopback port: never contacted, the certificates below are refused before any LDAP query.
    directories: {
      corp: {
        hosts: ["ldaps://127.0.0.1:1"],
        baseDn: "dc=example,dc=com",
        connectTimeoutMs: 500,
        operationTimeoutMs: 500,
      },
    },
    certificateQueries: { q: { directory: "corp", filter: "(mail={email})" } },
    authProfiles: { cert: { type: "certificate", query: "q", trustAnchors: { pem: pki.rootPem } } },
    listeners: { a: { authProfile: "cert" } },
    api: { tokens: [{ env: "SMTPGATE_API_TOKEN" }] },
  };
  const server = createTestHarness({
    workers: [
      {
        configPath: "./wrangler.toml",
        prebuiltWorkerDir: outdir,
        vars: { SMTPGATE_CONFIG: config },
        secrets: { SMTPGATE_API_TOKEN: TOKEN, SMTPGATE_LDAP_BIND_PASSWORD: "unused" },
      },
    ],
  });
  try {
    await server.listen();
    const health = await server.fetch("/healthz");
    if (health.status !== 200) throw new Error(`/healthz answered ${health.status}: ${await health.text()}`);
    await health.arrayBuffer();
    for (const [leaf, reason] of [
      ["expired", "certificate-expired"],
      ["otherCa", "certificate-untrusted"],
    ] as const) {
      const response = await server.fetch("/v1/decide/tls", {
        method: "POST",
        headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
        body: JSON.stringify({
          listener: "a",
          client: { ip: "192.0.2.1" },
          tls: { version: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256" },
          certificate: { chain: pki.chain(leaf) },
        }),
      });
      const verdict = (await response.json()) as { verdict?: string; reason?: string };
      if (response.status !== 200 || verdict.reason !== reason)
        throw new Error(
          `the ${leaf} certificate: expected ${reason}, got ${response.status} ${JSON.stringify(verdict)}`,
        );
    }
    console.log("worker bundle runs in workerd: /healthz 200, certificates judged (expired, untrusted)");
  } finally {
    await server.close();
  }
}

main().catch((error: unknown) => {
  console.error(`check-worker-bundle: ${(error as Error).stack ?? String(error)}`);
  process.exit(1);
});
