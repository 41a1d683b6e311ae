// A real Exim (4.96, Debian's exim4-daemon-heavy, unpacked by scripts/setup-exim.sh) asks smtpgate for SMTP AUTH
// with its dovecot authenticator: the API serves the front in-process on a unix socket, a private Exim uses it with
// the authenticators of docs/integrations/exim-authenticators.conf, and swaks is the SMTP client.
import { execFile } from "node:child_process";
import { chmod, chown, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { passwordGateConfig, startTestApi, type TestApi } from "../../dev/api.ts";
import { skipWithoutExim, startExim, type EximInstance } from "../../dev/exim/index.ts";
import { REFUSED_LOGINS, swaksAuth } from "../../dev/mta-auth.ts";
import { generateServerPki } from "../../dev/server-pki.ts";
import { startSink, type Sink } from "../../dev/sink.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";
import { startFronts } from "../start-fronts.ts";

const run = promisify(execFile);
const SNIPPET = new URL("../../docs/integrations/exim-authenticators.conf", import.meta.url);
const SNIPPET_SOCKET = "/run/smtpgate/auth";
const { alice } = SEED.users;

describe.skipIf(skipWithoutExim("fronts/dovecot-sasl/exim.test.ts"))(
  "Exim with the dovecot authenticator and smtpgate",
  () => {
    let slapd: SlapdInstance;
    let api: TestApi;
    let exim: EximInstance;
    let sink: Sink;
    let workDir: string;

    beforeAll(async () => {
      workDir = await mkdtemp(join(tmpdir(), "smtpgate-exim-sasl-"));
      const [started, pki] = await Promise.all([startSlapd(), generateServerPki(workDir)]);
      slapd = started;
      sink = await startSink();
      const snippet = await readFile(SNIPPET, "utf8");
      const socket = join(workDir, "auth");
      exim = await startExim({
        relayPort: sink.port,
        tls: { certFile: pki.certFile, keyFile: pki.keyFile },
        authenticators: snippet.replaceAll(SNIPPET_SOCKET, socket),
      });
      // As an operator would: the socket's folder is Exim's group's and setgid, so that the socket smtpgate makes
      // there is too, and mode 0660 lets Exim (not root: it runs as its exim_user) connect.
      await chown(workDir, 0, exim.gid);
      await chmod(workDir, 0o2750);
      api = await startTestApi(
        passwordGateConfig(slapd, { dovecotSasl: [{ listen: { path: socket, mode: "0660" }, listener: "password" }] }),
        { BIND_PW: SEED.servicePassword },
        0,
        { startFronts },
      );
    });

    afterAll(async () => {
      await exim?.close();
      await api?.close();
      await sink?.close();
      await slapd?.close();
      await rm(workDir, { recursive: true, force: true });
    });

    const swaks = (mechanism: "PLAIN" | "LOGIN", user: string, password: string, ...more: string[]) =>
      swaksAuth(exim.port, mechanism, user, password, more);

    // docs/integrations/exim.md shows the snippet byte for byte (npm run check:docs).
    it("uses the docs' authenticators, byte for byte but the socket's path", async () => {
      const snippet = await readFile(SNIPPET, "utf8");
      const config = await readFile(exim.configFile, "utf8");
      expect(config).toContain(`begin authenticators\n\n${snippet.replaceAll(SNIPPET_SOCKET, join(workDir, "auth"))}`);
    });

    it("offers AUTH only after STARTTLS, as the docs' server_advertise_condition says", async () => {
      const { stdout } = await run("swaks", [
        "--server",
        "127.0.0.1",
        "--port",
        String(exim.port),
        "--quit-after",
        "EHLO",
      ]);
      expect(stdout).toMatch(/<- {2}250-STARTTLS/);
      expect(stdout).not.toMatch(/AUTH/);
    });

    it("accepts alice with PLAIN and relays her message with her login ($auth1) in Exim's log", async () => {
      const out = await swaks("PLAIN", "alice", alice.password, "--from", "alice@example.com", "--to", "x@example.net");
      expect(out).toMatch(/<~ {2}235 Authentication succeeded/);
      expect(out).toMatch(/<~ {2}250 OK id=/);
      await exim.waitForLog(/<= alice@example\.com .* A=smtpgate_plain:alice /);
      await exim.waitForLog(/=> x@example\.net R=sink T=sink_smtp H=127\.0\.0\.1 .*queued as SINK/, 10_000);
      expect(sink.messages.at(-1)?.to).toEqual(["x@example.net"]);
    });

    it("accepts alice with LOGIN", async () => {
      expect(await swaks("LOGIN", "alice", alice.password)).toMatch(/<~ {2}235 Authentication succeeded/);
    });

    it("refuses a wrong password with PLAIN and LOGIN, and bob (right password) by the allowance query, with 535", async () => {
      for (const [mechanism, user, password] of REFUSED_LOGINS) {
        const out = await swaks(mechanism, user, password);
        expect(out, `${mechanism} ${user}`).toMatch(/<~\* 535 Incorrect authentication data/);
      }
      expect(api.logs).toContainEqual(
        expect.objectContaining({ user: "bob", verdict: "deny", reason: "allowance-failed" }),
      );
    });

    it("answers 435, never 535, while the directory is down, and 235 again once it is back", async () => {
      await slapd.stop();
      try {
        const out = await swaks("PLAIN", "alice", alice.password);
        expect(out).toMatch(/<~\* 435 Unable to authenticate at present/);
        expect(out).not.toMatch(/535/);
        await exim.waitForLog(
          /smtpgate_plain authenticator failed .* 435 Unable to authenticate at present: .*premature eof/,
        );
      } finally {
        await slapd.start();
      }
      expect(await swaks("PLAIN", "alice", alice.password)).toMatch(/<~ {2}235 Authentication succeeded/);
    });
  },
);
