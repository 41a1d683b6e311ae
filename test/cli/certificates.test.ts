// `smtpgate test-cert` and `smtpgate cert inspect`: the real certificate decision (path, CRL, certificate query)
// against a throw-away slapd and client PKI, and the token tool with revocation. Also `token new`.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { slapdDirectory } from "../../dev/api.ts";
import { generateClientPki, writeClientPki, type ClientPki } from "../../dev/client-pki/index.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";
import { expectUsageError, smtpgate } from "./run.ts";

const ENV = { BIND_PW: SEED.servicePassword };

let dir: string;
let slapd: SlapdInstance;
let pki: ClientPki;
let files: Record<string, string>;
let config: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "smtpgate-test-cert-"));
  slapd = await startSlapd();
  pki = await generateClientPki();
  files = await writeClientPki(pki, join(dir, "pki"));
  config = join(dir, "smtpgate.yaml");
  const document = {
    directories: { corp: slapdDirectory(slapd) },
    smtpAuthQueries: { q: { directory: "corp" } },
    certificateQueries: { "by-mail": { directory: "corp", baseDn: SEED.peopleDn, filter: "(mail={email})" } },
    crlSources: { issuing: { file: files["intermediateCurrent.crl"] } },
    authProfiles: {
      corp: { type: "ldap", query: "q" },
      cert: {
        type: "certificate",
        query: "by-mail",
        trustAnchors: { file: files["trust.pem"] },
        revocation: { crlSources: ["issuing"] },
        allowAuthFallback: "corp",
      },
    },
    listeners: { "cert-or-password": { authProfile: "cert" }, password: { authProfile: "corp" } },
    api: { tokens: [{ env: "API_TOKEN" }] },
  };
  await writeFile(config, JSON.stringify(document, null, 2));
});

afterAll(async () => {
  await slapd?.close();
  await rm(dir, { recursive: true, force: true });
});

const testCert = (...args: string[]) =>
  smtpgate(["test-cert", "--config", config, "--listener", "cert-or-password", ...args], { env: ENV });

describe("smtpgate test-cert", () => {
  it("authenticates alice's certificate and prints the path, the CRL used and the certificate query", async () => {
    const run = await testCert(files["alice.chain.pem"] as string);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const out = run.stdout;
    expect(out).toContain("certificate path\n  valid     ");
    expect(out).toContain("(trust anchor)");
    expect(out).toMatch(/revocation\n {2}.*CN=alice.*: good \(CRL issuing, thisUpdate \S+, nextUpdate \S+\)/);
    expect(out).toContain(
      `certificate query (directory corp)\n  base      ${SEED.peopleDn}\n  scope     sub\n  filter    (mail=alice@example.com)`,
    );
    expect(out).toMatch(new RegExp(`host {6}${slapd.ldapUrl} answered in \\d+ ms`));
    expect(out).toContain(`            ${SEED.users.alice.dn}\n              uid: alice`);
    expect(out).toMatch(/^verdict +allow \(reason ok\)\n {2}smtp {6}235 2\.7\.0/m);
  });

  it("takes the intermediates from --chain", async () => {
    const run = await testCert("--chain", files["intermediate.pem"] as string, files["alice.pem"] as string);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("2 certificates presented");
  });

  it("exits 1 for a revoked certificate, naming the CRL that lists it", async () => {
    const run = await testCert(files["revoked.chain.pem"] as string);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/revocation\n {2}.*CN=revoked.*: REVOKED: serial [0-9A-F]+ revoked .* \(CRL issuing/);
    expect(run.stdout).toMatch(/^verdict +deny \(reason certificate-revoked\)\n {2}smtp {6}554 5\.7\.1/m);
    expect(run.stdout).not.toContain("certificate query");
  });

  it("prints the check a certificate fails", async () => {
    const run = await testCert(files["expired.chain.pem"] as string);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^ {2}INVALID {3}certificate-expired: /m);
  });

  it("exits 1 with no decision when a valid certificate maps to no entry (AUTH would be offered)", async () => {
    const run = await testCert(files["carol.chain.pem"] as string);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain("found     0 entries");
    expect(run.stdout).toMatch(/^verdict +continue \(reason certificate-unmapped\)/m);
  });

  it("refuses a listener whose profile does not use certificates", async () => {
    const run = await smtpgate(
      ["test-cert", "--config", config, "--listener", "password", files["alice.pem"] as string],
      {
        env: ENV,
      },
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("does not use certificates (try test-auth)");
  });

  it("answers a missing certificate argument with the usage", async () => {
    expectUsageError(await testCert(), "test-cert", "missing FILE");
  });
});

describe("smtpgate cert inspect", () => {
  it("prints the tokens a query would use", async () => {
    const run = await smtpgate(["cert", "inspect", "--query", "(mail={email})", files["alice.pem"] as string]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^ {2}\\{sn\\} +${pki.leaves.alice.serialHex}$`, "m"));
    expect(run.stdout).toContain("query       (mail=alice@example.com)");
  });

  it("checks revocation with --crl: good for alice, revoked for the revoked leaf (exit 1)", async () => {
    const crl = files["intermediateCurrent.crl"] as string;
    const good = await smtpgate([
      "cert",
      "inspect",
      "--ca",
      files["trust.pem"] as string,
      "--crl",
      crl,
      files["alice.chain.pem"] as string,
    ]);
    expect(good.code).toBe(0);
    expect(good.stdout).toContain("path        valid: ");
    expect(good.stdout).toMatch(
      new RegExp(`revocation  .*CN=alice.*: good \\(CRL ${crl.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`),
    );

    const revoked = await smtpgate(["cert", "inspect", "--crl", crl, files["revoked.chain.pem"] as string]);
    expect(revoked.code).toBe(1);
    expect(revoked.stdout).toMatch(/revocation {2}.*CN=revoked.*: REVOKED: serial /);
  });

  it("says the revocation status is unknown for a CRL of another issuer", async () => {
    const run = await smtpgate([
      "cert",
      "inspect",
      "--crl",
      files["rootCurrent.crl"] as string,
      files["alice.chain.pem"] as string,
    ]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/revocation {2}.*: unknown: /);
  });

  it("answers an unknown option with one line and the usage, exit 2", async () => {
    expectUsageError(await smtpgate(["cert", "inspect", "--crt", "x"]), "cert inspect", "Unknown option '--crt'");
  });
});

describe("smtpgate token new", () => {
  it("prints a fresh base64url token of the asked size", async () => {
    const [first, second] = await Promise.all([
      smtpgate(["token", "new"]),
      smtpgate(["token", "new", "--bytes", "48"]),
    ]);
    expect(first.stdout).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
    expect(second.stdout).toMatch(/^[A-Za-z0-9_-]{64}\n$/);
    const small = await smtpgate(["token", "new", "--bytes", "8"]);
    expect(small.code).toBe(2);
    expect(small.stderr).toContain("--bytes: a whole number from 16 to 256");
  });
});
