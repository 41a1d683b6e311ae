// The Workers tests: the Worker (wrangler.toml's entry, compatibility date and flags) runs inside workerd through
// @cloudflare/vitest-pool-workers, against the slapd and CRL server that global-setup.ts starts on loopback.
// Kept apart from vitest.config.ts (Node tests): `npm run test:workers`, part of `npm test`.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineConfig } from "vitest/config";
import { generateCaAndServerCert } from "./dev/server-pki.ts";
import { workerTestBindings } from "./test/workers/fixture.ts";
import { WORKERD_TLS_ENV, type WorkerdTlsFiles } from "./test/workers/ldaps-front.ts";

// Offline: no metrics, no request.cf data download.
process.env.WRANGLER_SEND_METRICS ??= "false";
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";

// The directory's TLS for the LDAPS test. Locally workerd trusts NODE_EXTRA_CA_CERTS (a deployed Worker trusts
// only public CAs), and miniflare reads that variable once, when it is imported: so the CA is made first and the
// pool imported after. Global setup starts the LDAPS front with these files and removes the directory.
const dir = await mkdtemp(join(tmpdir(), "smtpgate-workerd-tls-"));
const directoryTls = await generateCaAndServerCert(dir, "", "smtpgate workerd test CA");
process.env.NODE_EXTRA_CA_CERTS = directoryTls.caFile;
process.env[WORKERD_TLS_ENV] = JSON.stringify({
  dir,
  caFile: directoryTls.caFile,
  certFile: directoryTls.certFile,
  keyFile: directoryTls.keyFile,
} satisfies WorkerdTlsFiles);
const { cloudflareTest } = await import("@cloudflare/vitest-pool-workers");

export default defineConfig({
  plugins: [
    cloudflareTest(({ inject }) => ({
      wrangler: { configPath: "./wrangler.toml" },
      remoteBindings: false,
      // Takes precedence over wrangler.toml's [vars]: the test configuration points at the loopback slapd.
      miniflare: { bindings: workerTestBindings(inject("workers")) },
    })),
  ],
  test: {
    include: ["test/workers/**/*.test.ts"],
    globalSetup: ["test/workers/global-setup.ts"],
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});
