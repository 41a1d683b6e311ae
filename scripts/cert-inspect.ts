/**
 * Prints the certificate tokens smtpgate would substitute into a certificate query, for a PEM or DER file.
 * With --ca, also validates the chain as a certificate profile would (without revocation).
 *
 *   npm run cert:inspect -- client.pem
 *   npm run cert:inspect -- --ca client-ca.pem --query '(&(objectClass=posixAccount)(caccn={cn})(cacserial={sn}))' chain.pem
 */
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { fillFilter, generalizedTime } from "../api/core/ldap-filter.ts";
import { parseTrustAnchors } from "../api/pki/certificate-chain.ts";
import { certificateTokens } from "../api/pki/certificate-tokens.ts";
import { validatePath } from "../api/pki/path-validation.ts";
import { x509 } from "../api/pki/x509.ts";

const USAGE =
  "usage: npm run cert:inspect -- [--ca anchors.pem] [--query FILTER] [--allow-no-eku] FILE (PEM chain, leaf first, or DER)";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    ca: { type: "string" },
    query: { type: "string" },
    "allow-no-eku": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (positionals.length !== 1) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}

const file = positionals[0] as string;
const bytes = await readFile(file).catch((error: NodeJS.ErrnoException) => {
  process.stderr.write(`cert:inspect: cannot read ${file} (${error.code ?? error.message})\n`);
  process.exit(2);
});
const text = bytes.toString("latin1");
const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
let chain: { certificate: x509.X509Certificate; der: Uint8Array }[];
try {
  chain = (blocks ?? [bytes]).map((block) => {
    const certificate = new x509.X509Certificate(block);
    return { certificate, der: new Uint8Array(certificate.rawData) };
  });
} catch (error) {
  process.stderr.write(`cert:inspect: ${file} holds no parsable certificate (${(error as Error).message})\n`);
  process.exit(2);
}
const leaf = chain[0] as (typeof chain)[number];
const tokens = certificateTokens(leaf.certificate, leaf.der);

const out: string[] = [`file        ${file} (${chain.length} certificate${chain.length > 1 ? "s" : ""}, leaf first)`];
out.push(`validity    ${leaf.certificate.notBefore.toISOString()} .. ${leaf.certificate.notAfter.toISOString()}`);
out.push("tokens");
for (const [token, value] of Object.entries(tokens))
  out.push(
    `  {${token}}${" ".repeat(Math.max(1, 13 - token.length))}${value ?? "(absent: a query using it fails closed)"}`,
  );

if (values.query) {
  const filled = fillFilter(values.query, { ...tokens, t: generalizedTime(new Date()) });
  out.push(
    `query       ${filled.ok ? filled.filter : `cannot be filled: no ${filled.missing.map((t) => `{${t}}`).join(", ")}`}`,
  );
}

let exitCode = 0;
if (values.ca) {
  const caFile = values.ca;
  let anchors;
  try {
    anchors = parseTrustAnchors(await readFile(caFile, "utf8"), caFile);
  } catch (error) {
    process.stderr.write(
      `cert:inspect: --ca ${caFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}\n`,
    );
    process.exit(2);
  }
  const result = await validatePath(
    chain.map((item) => item.certificate),
    { anchors, now: new Date(), allowNoExtendedKeyUsage: values["allow-no-eku"] ?? false },
  );
  out.push(
    result.ok
      ? `path        valid: ${result.path.map((c) => c.subject).join(" <- ")}`
      : `path        ${result.reason}: ${result.detail}`,
  );
  if (!result.ok) exitCode = 1;
}
process.stdout.write(`${out.join("\n")}\n`);
// 1 when --ca was given and the path is not valid, so scripts can test certificates.
process.exit(exitCode);
