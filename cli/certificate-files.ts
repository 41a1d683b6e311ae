/**
 * Reading the certificates a user hands a command: a PEM file (one or more certificates, leaf first) or a single
 * DER certificate. A file that cannot be read or parsed ends the command with a usage error naming it.
 */
import { readFile } from "node:fs/promises";
import { x509, type X509Certificate } from "../api/pki/x509.ts";
import { EXIT, CommandError } from "./command.ts";

export interface CertificateFileEntry {
  certificate: X509Certificate;
  der: Uint8Array;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export async function readCertificates(file: string, option = "FILE"): Promise<CertificateFileEntry[]> {
  const bytes = await readFile(file).catch((error: NodeJS.ErrnoException) => {
    throw new CommandError(`${option} ${file}: cannot read (${error.code ?? error.message})`, EXIT.usage);
  });
  const blocks = bytes.toString("latin1").match(PEM_CERTIFICATE);
  try {
    return (blocks ?? [bytes]).map((block) => {
      const certificate = new x509.X509Certificate(block);
      return { certificate, der: new Uint8Array(certificate.rawData) };
    });
  } catch (error) {
    throw new CommandError(
      `${option} ${file}: holds no parsable certificate (${(error as Error).message.split("\n")[0]})`,
      EXIT.usage,
    );
  }
}

/** The chain as a decision request carries it: base64 DER, leaf first. */
export function requestChain(entries: readonly CertificateFileEntry[]): string[] {
  return entries.map((entry) => Buffer.from(entry.der).toString("base64"));
}
