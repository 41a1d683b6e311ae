// nginx's mail proxy with smtpgate as its auth_http server, end to end: Debian's nginx (libnginx-mod-mail) with
// dev/nginx/mail.conf (the block docs/integrations/nginx.md shows), swaks as the client over STARTTLS and implicit
// TLS, the real API with a real slapd and the client PKI with its CRL, and the sink behind nginx taking XCLIENT.
import { writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApi, TEST_TOKEN, type TestApi } from "../../dev/api.ts";
import { writeClientPki } from "../../dev/client-pki/index.ts";
import { startDirectoryWithPki, type DirectoryWithPki } from "../../dev/directory-with-pki.ts";
import { startNginxMail, type NginxMail } from "../../dev/nginx/index.ts";
import { startSink, type Sink } from "../../dev/sink.ts";
import { SEED } from "../../dev/slapd/index.ts";
import { stackApiConfig, STACK_LISTENERS } from "../../dev/stack.ts";
import { swaks } from "../relay/clients.ts";

const LISTENER = STACK_LISTENERS.either;
const ALICE = { user: "alice", password: SEED.users.alice.password, address: "alice@example.com" };
const BOB = { user: "bob", password: SEED.users.bob.password };

let directory: DirectoryWithPki;
let sink: Sink;
let api: TestApi;
let nginx: NginxMail;
let files: Record<string, string>;

beforeAll(async () => {
  directory = await startDirectoryWithPki();
  const { slapd, pki, crls } = directory;
  files = await writeClientPki(pki, join(slapd.dir, "client-pki"));
  const clientCaFile = join(slapd.dir, "client-pki", "client-ca.pem");
  await writeFile(clientCaFile, `${pki.root.pem}${pki.intermediate.pem}`);
  sink = await startSink({ xclient: true });
  const config = stackApiConfig(slapd, pki, crls.baseUrl, { address: "127.0.0.1", port: sink.port });
  api = await startTestApi(config, { BIND_PW: SEED.servicePassword });
  nginx = await startNginxMail({
    apiUrl: api.url,
    apiToken: TEST_TOKEN,
    listener: LISTENER,
    certFile: slapd.pki.certFile,
    keyFile: slapd.pki.keyFile,
    clientCaFile,
  });
}, 60_000);

afterAll(async () => {
  await nginx?.stop();
  await api?.close();
  await sink?.close();
  await directory?.close();
});

/** swaks through nginx from alice to a remote address (nothing but an authenticated session may send it). */
function send(args: readonly string[], kind: "starttls" | "implicitTls" = "starttls") {
  const tls = kind === "starttls" ? ["--tls"] : ["--tlsc"];
  return swaks(nginx.ports[kind], ["--from", ALICE.address, "--to", "friend@other.example", ...tls, ...args], {
    ca: directory.slapd.pki.caFile,
  });
}
const password = (mechanism: "PLAIN" | "LOGIN", user: string, secret: string) => [
  "--auth",
  mechanism,
  "--auth-user",
  user,
  "--auth-password",
  secret,
];
const certificate = (leaf: string) => [
  "--tls-cert",
  files[`${leaf}.pem`] as string,
  "--tls-key",
  files[`${leaf}.key`] as string,
];

/** The decisions the API logged since `since` (a previous logs.length). */
const decisionsSince = (since: number) => api.logs.slice(since).filter((record) => record.msg === "decision");

describe("nginx's mail proxy asking smtpgate (auth_http)", () => {
  it("lets alice in by password over STARTTLS; the upstream gets her mail with XCLIENT LOGIN=alice", async () => {
    const before = sink.messages.length;
    const result = await send(password("PLAIN", ALICE.user, ALICE.password));
    expect(result.replies).toContain("235 2.0.0 OK");
    expect(result.code).toBe(0);
    expect(sink.messages.slice(before)).toMatchObject([
      { from: ALICE.address, to: ["friend@other.example"], xclient: { addr: "127.0.0.1", login: "alice" } },
    ]);
  });

  it("lets alice in by AUTH LOGIN over implicit TLS", async () => {
    const before = sink.messages.length;
    const result = await send(password("LOGIN", ALICE.user, ALICE.password), "implicitTls");
    expect(result.code).toBe(0);
    expect(sink.messages.slice(before)).toMatchObject([{ xclient: { login: "alice" } }]);
  });

  it("hands the upstream the directory's identity, not the name as typed", async () => {
    const before = sink.messages.length;
    expect((await send(password("PLAIN", "ALICE", ALICE.password))).code).toBe(0);
    expect(sink.messages.slice(before)).toMatchObject([{ xclient: { login: "alice" } }]);
  });

  it("refuses bob, whose password is right but who is not allowed to send: 535 5.7.8, nothing upstream", async () => {
    const before = sink.messages.length;
    const logged = api.logs.length;
    const result = await send(password("PLAIN", BOB.user, BOB.password));
    expect(result.replies).toContain("535 5.7.8 Authentication credentials invalid");
    expect(result.code).not.toBe(0);
    expect(sink.messages.length).toBe(before);
    expect(decisionsSince(logged)).toMatchObject([{ kind: "auth", verdict: "deny", reason: "allowance-failed" }]);
  });

  it("refuses a wrong password with the same words", async () => {
    const result = await send(password("PLAIN", ALICE.user, "not-her-password"));
    expect(result.replies).toContain("535 5.7.8 Authentication credentials invalid");
  });

  it("lets alice in by her certificate without AUTH (decided at RCPT); the upstream sees LOGIN=alice", async () => {
    const before = sink.messages.length;
    const logged = api.logs.length;
    const result = await send(certificate("alice"));
    expect(result.code).toBe(0);
    expect(sink.messages.slice(before)).toMatchObject([{ xclient: { login: "alice" } }]);
    expect(decisionsSince(logged)).toMatchObject([{ kind: "tls", verdict: "allow", method: "certificate" }]);
  });

  it("lets alice in by her certificate over implicit TLS", async () => {
    const before = sink.messages.length;
    expect((await send(certificate("alice"), "implicitTls")).code).toBe(0);
    expect(sink.messages.slice(before)).toMatchObject([{ xclient: { login: "alice" } }]);
  });

  it("refuses a revoked certificate (nginx checks no CRL; smtpgate does): 554 5.7.1 and close", async () => {
    const before = sink.messages.length;
    const logged = api.logs.length;
    const result = await send(certificate("revoked"));
    expect(result.replies).toContain("554 5.7.1 Valid client certificate required");
    expect(sink.messages.length).toBe(before);
    expect(decisionsSince(logged)).toMatchObject([{ kind: "tls", verdict: "deny", reason: "certificate-revoked" }]);
  });

  it("refuses an expired certificate (nginx itself, at the handshake: 421 4.7.1)", async () => {
    const before = sink.messages.length;
    const result = await send(certificate("expired"));
    expect(result.replies).toContain("421 4.7.1 SSL certificate error");
    expect(sink.messages.length).toBe(before);
  });

  it("refuses a session with neither AUTH nor a certificate: 530 5.7.0", async () => {
    const result = await send([]);
    expect(result.replies).toContain("530 5.7.0 Authentication required");
  });

  it("answers 4xx and accepts nothing while the directory is down", async () => {
    const before = sink.messages.length;
    await directory.slapd.stop();
    try {
      const byPassword = await send(password("PLAIN", ALICE.user, ALICE.password));
      expect(byPassword.replies).toContain("454 4.7.0 Temporary authentication failure");
      const byCertificate = await send(certificate("alice"));
      expect(byCertificate.replies).toContain("454 4.7.0 Temporary authentication failure");
      expect(sink.messages.length).toBe(before);
    } finally {
      await directory.slapd.start();
    }
  });

  it("never logs a password or the API token", async () => {
    const logs = JSON.stringify(api.logs) + (await nginx.errorLog());
    expect(logs).not.toContain(ALICE.password);
    expect(logs).not.toContain(BOB.password);
    expect(JSON.stringify(api.logs)).not.toContain(TEST_TOKEN);
  });
});

describe("the auth_http answer itself", () => {
  /** A request as nginx writes it (HTTP/1.0, one header per fact), and the raw answer. */
  function askLikeNginx(headers: Record<string, string>, token = TEST_TOKEN): Promise<string> {
    const url = new URL(api.url);
    const lines = [
      `GET /v1/nginx/auth/${LISTENER} HTTP/1.0`,
      "Host: localhost",
      ...Object.entries({ Authorization: `Bearer ${token}`, ...headers }).map(([name, value]) => `${name}: ${value}`),
      "",
      "",
    ];
    return new Promise((resolve, reject) => {
      const socket = connect({ host: url.hostname, port: Number(url.port) });
      let answer = "";
      socket.on("data", (chunk: Buffer) => (answer += chunk.toString("latin1")));
      socket.on("end", () => resolve(answer));
      socket.on("error", reject);
      socket.write(lines.join("\r\n"));
    });
  }
  const passwordRequest = (user: string, secret: string) => ({
    "Auth-Method": "plain",
    "Auth-User": user,
    "Auth-Pass": secret.replace(/%/g, "%25").replace(/ /g, "%20"),
    "Auth-Protocol": "smtp",
    "Auth-Login-Attempt": "1",
    "Client-IP": "127.0.0.1",
  });

  it("fits nginx's 1 KiB buffer, with no stack or secret in it", async () => {
    for (const answer of [
      await askLikeNginx(passwordRequest(ALICE.user, ALICE.password)),
      await askLikeNginx(passwordRequest(BOB.user, BOB.password)),
      await askLikeNginx({ ...passwordRequest(ALICE.user, ALICE.password), "Auth-Protocol": "imap" }),
    ]) {
      expect(answer.length).toBeLessThan(1024);
      expect(answer).not.toContain(ALICE.password);
      expect(answer).not.toMatch(/at .*\.ts/);
    }
  });

  it("answers an allow with the upstream's address and port", async () => {
    const answer = await askLikeNginx(passwordRequest(ALICE.user, ALICE.password));
    expect(answer).toMatch(/\r\nAuth-Status: OK\r\n/i);
    expect(answer).toMatch(new RegExp(`\r\nAuth-Server: 127\\.0\\.0\\.1\r\n`, "i"));
    expect(answer).toMatch(new RegExp(`\r\nAuth-Port: ${sink.port}\r\n`, "i"));
  });

  it("gives a caller without the token no Auth-Status at all (nginx then refuses with a temporary error)", async () => {
    const answer = await askLikeNginx(passwordRequest(ALICE.user, ALICE.password), "wrong-token");
    expect(answer).toMatch(/^HTTP\/1\.[01] 401/);
    expect(answer).not.toMatch(/Auth-Status/i);
  });
});
