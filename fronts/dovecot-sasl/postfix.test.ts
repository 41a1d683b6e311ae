// A real Postfix (3.7.11, Debian) asks smtpgate for SMTP AUTH over the Dovecot protocol: the API serves the
// front in-process (the `fronts:` section, started by the Node runtime), a private Postfix uses it with the
// main.cf lines of docs/integrations/postfix-sasl.main.cf, and swaks is the SMTP client.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { passwordGateConfig, startTestApi, type TestApi } from "../../dev/api.ts";
import { REFUSED_LOGINS, swaksAuth } from "../../dev/mta-auth.ts";
import { freePort } from "../../dev/ports.ts";
import { startPostfix, type PostfixInstance } from "../../dev/postfix/index.ts";
import { postfixSaslMainCf } from "../../dev/postfix/snippets.ts";
import { generateServerPki } from "../../dev/server-pki.ts";
import { startSink, type Sink } from "../../dev/sink.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";
import { startSocketTap, type SocketTap } from "../../dev/socket-tap.ts";
import { startFronts } from "../start-fronts.ts";

const FIXTURE = new URL("./fixtures/postfix-3.7.11.txt", import.meta.url);
const { alice } = SEED.users;

let slapd: SlapdInstance;
let api: TestApi;
let tap: SocketTap;
let postfix: PostfixInstance;
let sink: Sink;
let pkiDir: string;

beforeAll(async () => {
  pkiDir = await mkdtemp(join(tmpdir(), "smtpgate-postfix-pki-"));
  const [started, pki, saslPort] = await Promise.all([startSlapd(), generateServerPki(pkiDir), freePort()]);
  slapd = started;
  sink = await startSink();
  api = await startTestApi(
    passwordGateConfig(slapd, { dovecotSasl: [{ listen: `127.0.0.1:${saslPort}`, listener: "password" }] }),
    { BIND_PW: SEED.servicePassword },
    0,
    { startFronts },
  );
  // Between Postfix and smtpgate: a tap that records what each side said.
  tap = await startSocketTap({ host: "127.0.0.1", port: saslPort });
  postfix = await startPostfix({
    relayPort: sink.port,
    tls: { certFile: pki.certFile, keyFile: pki.keyFile },
    mainCf: await postfixSaslMainCf(`127.0.0.1:${tap.port}`),
  });
});

afterAll(async () => {
  await postfix?.close();
  await tap?.close();
  await api?.close();
  await sink?.close();
  await slapd?.close();
  await rm(pkiDir, { recursive: true, force: true });
});

const swaks = (mechanism: "PLAIN" | "LOGIN", user: string, password: string, ...more: string[]) =>
  swaksAuth(postfix.port, mechanism, user, password, more);

describe("Postfix with smtpd_sasl_type = dovecot and smtpgate", () => {
  it("uses the docs' main.cf lines, byte for byte but the port", async () => {
    const snippet = await postfixSaslMainCf();
    const page = await readFile(new URL("../../docs/integrations/postfix.md", import.meta.url), "utf8");
    expect(page).toContain(snippet);
    expect(await readFile(join(postfix.configDir, "main.cf"), "utf8")).toContain(
      await postfixSaslMainCf(`127.0.0.1:${tap.port}`),
    );
  });

  it("accepts alice with PLAIN and relays her message with her login in Postfix's log", async () => {
    const out = await swaks("PLAIN", "alice", alice.password, "--from", "alice@example.com", "--to", "x@example.net");
    expect(out).toMatch(/<~ {2}235 2\.7\.0 Authentication successful/);
    expect(out).toMatch(/<~ {2}250 2\.0\.0 Ok: queued as/);
    await postfix.waitForLog(/sasl_method=PLAIN, sasl_username=alice\b/);
    await postfix.waitForLog(/status=sent/, 10_000);
    expect(sink.messages.at(-1)?.to).toEqual(["x@example.net"]);
  });

  it("accepts alice with LOGIN", async () => {
    expect(await swaks("LOGIN", "alice", alice.password)).toMatch(/<~ {2}235 2\.7\.0 Authentication successful/);
  });

  it("refuses a wrong password with PLAIN and LOGIN, and bob (right password) by the allowance query, with 535", async () => {
    for (const [mechanism, user, password] of REFUSED_LOGINS) {
      const out = await swaks(mechanism, user, password);
      expect(out, `${mechanism} ${user}`).toMatch(
        /<~\* {1}535 5\.7\.8 Error: authentication failed: Authentication credentials invalid/,
      );
    }
    expect(api.logs).toContainEqual(
      expect.objectContaining({ user: "bob", verdict: "deny", reason: "allowance-failed" }),
    );
  });

  it("answers 454, never 535, while the directory is down, and 235 again at the next session once it is back", async () => {
    await slapd.stop();
    try {
      const out = await swaks("PLAIN", "alice", alice.password);
      expect(out).toMatch(
        /<~\* {1}454 4\.7\.0 Temporary authentication failure: Connection lost to authentication server/,
      );
      expect(out).not.toMatch(/^<~\*? +535 /m);
    } finally {
      await slapd.start();
    }
    expect(await swaks("PLAIN", "alice", alice.password)).toMatch(/<~ {2}235 2\.7\.0 Authentication successful/);
  });

  it("matches the recorded Postfix 3.7.11 transcript (fixtures/postfix-3.7.11.txt)", async () => {
    // RECORD_TRANSCRIPT=1 writes the first connection's lines (both sides) as the new fixture.
    if (process.env.RECORD_TRANSCRIPT === "1") await writeFile(FIXTURE, transcript(tap, 1));
    const fixture = await readFile(FIXTURE, "utf8");
    const client = tap.sent(1, "client").split("\n");
    const expected = fixture
      .split("\n")
      .filter((line) => line.startsWith("C: "))
      .map((line) => line.slice(3));
    // The first connection's first lines: the client's handshake and alice's PLAIN request, with TLS.
    expect(expected).toContainEqual(expect.stringMatching(/^AUTH\t\d+\tPLAIN\tservice=smtp\tnologin\t.*\tsecured\t/));
    expect(client.slice(0, expected.length).map(anonymise)).toEqual(expected.map(anonymise));
  });
});

/** One connection as `S: ` and `C: ` lines, in the order the tap saw them. */
function transcript(recorded: SocketTap, connection: number): string {
  const lines: string[] = [];
  for (const chunk of recorded.chunks.filter((each) => each.connection === connection)) {
    const prefix = chunk.from === "client" ? "C: " : "S: ";
    for (const line of chunk.data.split("\n").filter((each) => each !== "")) lines.push(prefix + line);
  }
  return `${lines.join("\n")}\n`;
}

/** The process id and the request ids change from run to run. */
function anonymise(line: string): string {
  return line.replace(/^CPID\t\d+$/, "CPID\t<pid>").replace(/^AUTH\t\d+\t/, "AUTH\t<id>\t");
}
