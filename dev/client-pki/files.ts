// The client PKI as files, for tools that read PEM from disk (swaks, openssl, the demo's users).
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { LEAF_NAMES, type ClientPki, type IssuedCertificate } from "./contents.ts";
import { pemOf } from "./issue.ts";

/**
 * Writes the PKI into `dir` (created if missing) and returns file name → absolute path:
 * - `<name>.pem` and `<name>.key` for root, intermediate, otherRoot, every leaf and every extra CA;
 * - `<leaf>.chain.pem`: the leaf followed by the chain(leaf) intermediates (no root);
 * - `<crl>.crl` (DER) and `<crl>.crl.pem` for intermediateCurrent, intermediateStale, intermediateWrongKey,
 *   rootCurrent;
 * - `trust.pem`: the root (the trust-anchor bundle).
 */
export async function writeClientPki(pki: ClientPki, dir: string): Promise<Record<string, string>> {
  await mkdir(dir, { recursive: true });
  const files: Record<string, string | Uint8Array> = { "trust.pem": pki.rootPem };
  const certs: [string, IssuedCertificate][] = [
    ["root", pki.root],
    ["intermediate", pki.intermediate],
    ["otherRoot", pki.otherRoot],
    ...Object.entries(pki.extraCas),
    ...Object.entries(pki.leaves),
  ];
  for (const [name, c] of certs) {
    files[`${name}.pem`] = c.pem;
    files[`${name}.key`] = c.keyPem;
  }
  for (const name of LEAF_NAMES) {
    files[`${name}.chain.pem`] = pki
      .chain(name)
      .map((b64) => pemOf(Buffer.from(b64, "base64"), "CERTIFICATE"))
      .join("");
  }
  for (const [name, crl] of Object.entries(pki.crls)) {
    files[`${name}.crl`] = crl.der;
    files[`${name}.crl.pem`] = crl.pem;
  }
  const paths: Record<string, string> = {};
  await Promise.all(
    Object.entries(files).map(async ([name, body]) => {
      const path = join(dir, name);
      await writeFile(path, body, { mode: name.endsWith(".key") ? 0o600 : 0o644 });
      paths[name] = path;
    }),
  );
  return paths;
}
