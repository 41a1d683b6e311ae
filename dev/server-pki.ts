// Throw-away PKI for the test LDAP servers, made with the openssl CLI: a test CA with a server certificate for
// 127.0.0.1/localhost, and a second, unrelated CA with its own server certificate for wrong-CA tests.
import { execFile } from "node:child_process";
import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export interface ServerPki {
  /** PEM file of the test CA: the one clients should trust. */
  caFile: string;
  caPem: string;
  /** Server certificate (PEM, leaf only) signed by the test CA, SAN IP:127.0.0.1 and DNS:localhost. */
  certFile: string;
  /** Its private key (PEM, PKCS#8, unencrypted, readable by the current user). */
  keyFile: string;
  /** An unrelated CA: trusting only this one must make TLS to a server with `certFile` fail. */
  otherCaFile: string;
  otherCaPem: string;
  /** A server certificate signed by the other CA (same SAN), for a server presenting the "wrong" chain. */
  otherCertFile: string;
  otherKeyFile: string;
}

export interface CaFiles {
  caFile: string;
  caPem: string;
  certFile: string;
  keyFile: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await execFileAsync("openssl", args, { cwd });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args.join(" ")} failed: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

const KEY_ARGS = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

/**
 * Makes a CA (EC P-256, self-signed) and a server certificate signed by it in `dir`, with file names starting
 * with `prefix`. The server certificate has SAN IP:127.0.0.1, DNS:localhost and the serverAuth EKU.
 */
export async function generateCaAndServerCert(dir: string, prefix: string, caName: string): Promise<CaFiles> {
  await mkdir(dir, { recursive: true });
  const caFile = join(dir, `${prefix}ca.pem`);
  const caKey = join(dir, `${prefix}ca.key`);
  const certFile = join(dir, `${prefix}server.pem`);
  const keyFile = join(dir, `${prefix}server.key`);
  const csrFile = join(dir, `${prefix}server.csr`);
  const extFile = join(dir, `${prefix}server.ext`);

  // The CA: one `req -x509`, with the extensions a strict verifier expects of a CA.
  await openssl(
    [
      "req",
      "-x509",
      ...KEY_ARGS,
      "-keyout",
      caKey,
      "-out",
      caFile,
      "-days",
      "30",
      "-subj",
      `/O=smtpgate tests/CN=${caName}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
      "-addext",
      "subjectKeyIdentifier=hash",
    ],
    dir,
  );
  // The server key and CSR, then the certificate signed by the CA with the server extensions.
  await openssl(
    ["req", "-new", ...KEY_ARGS, "-keyout", keyFile, "-out", csrFile, "-subj", "/O=smtpgate tests/CN=localhost"],
    dir,
  );
  await writeFile(
    extFile,
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "subjectKeyIdentifier=hash",
      "authorityKeyIdentifier=keyid",
      "",
    ].join("\n"),
  );
  await openssl(
    [
      "x509",
      "-req",
      "-in",
      csrFile,
      "-CA",
      caFile,
      "-CAkey",
      caKey,
      "-CAcreateserial",
      "-out",
      certFile,
      "-days",
      "30",
      "-extfile",
      extFile,
    ],
    dir,
  );
  return { caFile, caPem: await readFile(caFile, "utf8"), certFile, keyFile };
}

/** The test CA and the unrelated "other" CA, each with a server certificate for 127.0.0.1/localhost, in `dir`. */
export async function generateServerPki(dir: string): Promise<ServerPki> {
  const [main, other] = await Promise.all([
    generateCaAndServerCert(dir, "", "smtpgate test CA"),
    generateCaAndServerCert(dir, "other-", "unrelated test CA"),
  ]);
  return {
    caFile: main.caFile,
    caPem: main.caPem,
    certFile: main.certFile,
    keyFile: main.keyFile,
    otherCaFile: other.caFile,
    otherCaPem: other.caPem,
    otherCertFile: other.certFile,
    otherKeyFile: other.keyFile,
  };
}

/** Copies the certificate and key files of `pki` into `dir` (made if missing) and returns the copy's paths. */
export async function copyServerPki(pki: ServerPki, dir: string): Promise<ServerPki> {
  await mkdir(dir, { recursive: true });
  const copy = async (file: string): Promise<string> => {
    const target = join(dir, basename(file));
    await copyFile(file, target);
    return target;
  };
  const [caFile, certFile, keyFile, otherCaFile, otherCertFile, otherKeyFile] = await Promise.all(
    [pki.caFile, pki.certFile, pki.keyFile, pki.otherCaFile, pki.otherCertFile, pki.otherKeyFile].map(copy),
  );
  return {
    caFile: caFile as string,
    caPem: pki.caPem,
    certFile: certFile as string,
    keyFile: keyFile as string,
    otherCaFile: otherCaFile as string,
    otherCaPem: pki.otherCaPem,
    otherCertFile: otherCertFile as string,
    otherKeyFile: otherKeyFile as string,
  };
}
