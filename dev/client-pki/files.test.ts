// Proves the client PKI's files (writeClientPki) and, with them, that openssl agrees with the defects: `openssl
// verify -x509_strict -purpose sslclient` accepts the clean leaves and names each defect, and the CRLs revoke,
// expire and fail to verify where they should.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateClientPki, writeClientPki, type ClientPki, type LeafName } from "./index.ts";

const execFileAsync = promisify(execFile);

describe("files and openssl's opinion", () => {
  let pki: ClientPki;
  let dir: string;
  let files: Record<string, string>;

  beforeAll(async () => {
    pki = await generateClientPki();
    dir = await mkdtemp(join(tmpdir(), "smtpgate-client-pki-"));
    files = await writeClientPki(pki, dir);
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function opensslVerify(leaf: LeafName, extra: string[] = []): Promise<string> {
    const args = ["verify", "-x509_strict", "-purpose", "sslclient", "-CAfile", files["trust.pem"] ?? ""];
    const untrusted = files[`${leaf}.chain.pem`] ?? "";
    try {
      const leafFile = files[`${leaf}.pem`] ?? "";
      const { stdout, stderr } = await execFileAsync("openssl", [...args, "-untrusted", untrusted, ...extra, leafFile]);
      return stdout + stderr;
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      return `${e.stdout ?? ""}${e.stderr ?? ""}`;
    }
  }

  it("writes pem, key, chain and crl files", async () => {
    expect(await readFile(files["alice.pem"] ?? "", "utf8")).toBe(pki.leaves.alice.pem);
    expect(await readFile(files["alice.key"] ?? "", "utf8")).toBe(pki.leaves.alice.keyPem);
    const pathLenChain = await readFile(files["pathLenLeaf.chain.pem"] ?? "", "utf8");
    expect(pathLenChain.match(/BEGIN CERTIFICATE/g)).toHaveLength(3);
    const crlDer = new Uint8Array(await readFile(files["intermediateCurrent.crl"] ?? ""));
    expect(crlDer).toEqual(pki.crls.intermediateCurrent.der);
    expect(await readFile(files["intermediateCurrent.crl.pem"] ?? "", "utf8")).toBe(pki.crls.intermediateCurrent.pem);
    const cas = [
      "root",
      "intermediate",
      "otherRoot",
      "notCa",
      "noKeyCertSign",
      "subIntermediate",
      "expiredIntermediate",
    ];
    for (const n of cas) {
      expect(files[`${n}.pem`], n).toBeDefined();
      expect(files[`${n}.key`], n).toBeDefined();
    }
    expect(await readFile(files["trust.pem"] ?? "", "utf8")).toBe(pki.rootPem);
  });

  it("openssl verify (strict, sslclient) accepts the clean leaves and names each defect", async () => {
    const expectations: [LeafName, RegExp][] = [
      ["alice", /: OK/],
      ["bob", /: OK/],
      ["carol", /: OK/],
      ["subjectEmailOnly", /: OK/],
      ["serialLeadingZero", /: OK/],
      ["revoked", /: OK/], // without a CRL
      ["expired", /certificate has expired/],
      ["notYetValid", /certificate is not yet valid/],
      ["otherCa", /unable to get local issuer certificate/],
      ["selfSigned", /self-signed certificate/],
      ["noClientAuth", /unsuitable certificate purpose/],
      ["noDigitalSignature", /unsuitable certificate purpose/],
      ["unknownCritical", /unhandled critical extension/],
      ["notCaIntermediateLeaf", /invalid CA certificate/],
      ["noKeyCertSignLeaf", /key usage does not include certificate signing/],
      ["pathLenLeaf", /path length constraint exceeded/],
      ["expiredIntermediateLeaf", /certificate has expired/],
    ];
    const results = await Promise.all(expectations.map(([leaf]) => opensslVerify(leaf)));
    expectations.forEach(([leaf, re], i) => expect(results[i], leaf).toMatch(re));
  });

  it("openssl verify with CRLs: revoked is revoked, stale CRL expired, wrong-key CRL bad signature", async () => {
    const withCrls = async (leaf: LeafName, crl: keyof ClientPki["crls"]): Promise<string> => {
      const bundle = join(dir, `${crl}+root.pem`);
      await writeFile(bundle, pki.crls[crl].pem + pki.crls.rootCurrent.pem);
      return opensslVerify(leaf, ["-crl_check_all", "-CRLfile", bundle]);
    };
    expect(await withCrls("alice", "intermediateCurrent")).toMatch(/: OK/);
    expect(await withCrls("revoked", "intermediateCurrent")).toMatch(/certificate revoked/);
    expect(await withCrls("alice", "intermediateStale")).toMatch(/CRL has expired/);
    expect(await withCrls("alice", "intermediateWrongKey")).toMatch(/CRL signature failure/);
  });
});
