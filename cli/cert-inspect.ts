/**
 * `smtpgate cert inspect`: the certificate tokens smtpgate would substitute into a certificate query, for a PEM or
 * DER file; with --ca the chain's path as a certificate profile would validate it, with --crl its revocation status.
 *
 *   smtpgate cert inspect client.pem
 *   smtpgate cert inspect --ca client-ca.pem --crl issuing-ca.crl --query '(&(caccn={cn})(cacserial={sn}))' chain.pem
 */
import { readFile } from "node:fs/promises";
import { fillFilter, generalizedTime } from "../api/core/ldap-filter.ts";
import { parseTrustAnchors } from "../api/pki/certificate-chain.ts";
import { certificateTokens } from "../api/pki/certificate-tokens.ts";
import { CrlStore, type RevocationStatus } from "../api/pki/crl-store.ts";
import { validatePath } from "../api/pki/path-validation.ts";
import type { X509Certificate } from "../api/pki/x509.ts";
import { readCertificates } from "./certificate-files.ts";
import { CommandError, EXIT, parseCommandLine, UsageError } from "./command.ts";

export const HELP = `usage: smtpgate cert inspect [--ca FILE] [--crl FILE]... [--query FILTER] [--allow-no-eku] FILE

Prints the tokens of a client certificate (FILE: PEM, leaf first, optionally with its chain; or one DER
certificate) as a certificate query would see them: {cn} {sn} {sn10} {subject} {issuer} {email} {upn}
{fp_sha256} {spki_sha256}. A token shown as absent makes a query that uses it fail closed.

Options:
  --ca FILE        validate the path to these trust anchors (PEM), as a certificate profile does
  --crl FILE       check revocation against this CRL (DER or PEM; may be repeated): the leaf, and with --ca each
                   intermediate CA on the path. The CRL's issuer, signature and nextUpdate are checked. Without
                   --ca the issuer must be the second certificate in FILE
  --query FILTER   fill this certificate query template with the tokens and print the filter
  --allow-no-eku   accept a leaf without extendedKeyUsage (the profile's allowNoExtendedKeyUsage)
  -h, --help       this help

Exit status: 0 the certificate is fine for what was checked; 1 the path is invalid, or the leaf is revoked or its
revocation status unknown; 2 usage error or a file that cannot be read.
`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseCommandLine(
    argv,
    {
      ca: { type: "string" },
      crl: { type: "string", multiple: true },
      query: { type: "string" },
      "allow-no-eku": { type: "boolean" },
    },
    { min: 1, max: 1, name: "FILE (the certificate)" },
  );
  if (help) {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  const file = positionals[0] as string;
  const chain = await readCertificates(file);
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

  let status: number = EXIT.ok;
  // Who issued whom: the validated path with --ca, else the chain as given (the CRL's signature proves the issuer).
  let path: X509Certificate[] | null = null;
  if (values.ca) {
    const anchors = await readAnchors(values.ca);
    const result = await validatePath(
      chain.map((item) => item.certificate),
      { anchors, now: new Date(), allowNoExtendedKeyUsage: values["allow-no-eku"] ?? false },
    );
    out.push(
      result.ok
        ? `path        valid: ${result.path.map((c) => c.subject).join(" <- ")}`
        : `path        ${result.reason}: ${result.detail}`,
    );
    if (result.ok) path = result.path;
    else status = EXIT.problem;
  }

  if (values.crl && values.crl.length > 0) {
    const issued = path ?? chain.map((item) => item.certificate);
    if (values.ca && !path) out.push("revocation  not checked: no valid path");
    else if (issued.length < 2)
      throw new UsageError("--crl needs the issuer of the certificate: give --ca, or put the issuer after the leaf");
    else {
      const crls = await loadCrls(values.crl);
      // The leaf, then (on a validated path) each intermediate CA below the anchor.
      const checked = path ? issued.length - 1 : 1;
      for (let index = 0; index < checked; index += 1) {
        const revocation = await crls.store.check(
          issued[index] as X509Certificate,
          issued[index + 1] as X509Certificate,
          {
            sources: crls.names,
            useDistributionPoints: false,
            staleGraceSeconds: 0,
          },
        );
        out.push(
          `${index === 0 ? "revocation  " : "            "}${describeRevocation(issued[index] as X509Certificate, revocation, crls.store)}`,
        );
        // A missing CRL for an intermediate CA is not "unknown" (few CAs publish one for their own issuer).
        if (revocation.status === "revoked" || (index === 0 && revocation.status === "unknown")) status = EXIT.problem;
      }
    }
  }
  process.stdout.write(`${out.join("\n")}\n`);
  return status;
}

async function readAnchors(file: string): Promise<X509Certificate[]> {
  try {
    return parseTrustAnchors(await readFile(file, "utf8"), file);
  } catch (error) {
    throw new CommandError(
      `--ca ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      EXIT.usage,
    );
  }
}

async function loadCrls(files: readonly string[]): Promise<{ store: CrlStore; names: string[] }> {
  const store = new CrlStore({
    sources: files.map((file) => ({ name: file, file, refreshSeconds: 3_600 })),
    readFile: (path) => readFile(path),
  });
  await store.refreshAll();
  const failed = store.status().find((state) => state.crl === null);
  if (failed) throw new CommandError(`--crl ${failed.name}: ${failed.error ?? "not loaded"}`, EXIT.usage);
  return { store, names: [...files] };
}

/** One line: the certificate, its status and the CRL that said so. */
export function describeRevocation(certificate: X509Certificate, status: RevocationStatus, crls: CrlStore): string {
  const subject = `${certificate.subject} (serial ${certificate.serialNumber.toUpperCase()})`;
  if (status.status === "unknown") return `${subject}: unknown: ${status.detail}`;
  const crl = crls.status().find((state) => state.name === status.source)?.crl;
  const dates = crl
    ? `, thisUpdate ${crl.thisUpdate.toISOString()}, nextUpdate ${crl.nextUpdate?.toISOString() ?? "absent"}`
    : "";
  const where = `CRL ${status.source}${dates}`;
  return status.status === "good" ? `${subject}: good (${where})` : `${subject}: REVOKED: ${status.detail} (${where})`;
}
