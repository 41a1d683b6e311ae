// The three flows of docs/flows.md end to end through the real edge relay: real SMTP clients (swaks, openssl s_client,
// Python's smtplib, nodemailer, a raw socket) on loopback, the real decision API, a real slapd, a client PKI with
// a CRL on a local HTTP server, and an upstream sink that must receive what the relay says it relayed.
import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { opensslStartTls, plainBlob, python, RawSmtp, swaks } from "./clients.ts";
import {
  ALICE,
  allLogs,
  BOB,
  receivedHeader,
  STACK_LISTENERS,
  startRelayFixture,
  type RelayFixture,
} from "./fixture.ts";

let fx: RelayFixture;

beforeAll(async () => {
  fx = await startRelayFixture();
});

afterAll(async () => {
  await fx?.close();
});

const { certificate: CERT_ONLY, password: PASSWORD, either: EITHER } = STACK_LISTENERS;

const AUTH_OK = "235 2.7.0 Authentication succeeded";
const AUTH_INVALID = "535 5.7.8 Authentication credentials invalid";
const CERT_REQUIRED = "554 5.7.1 Valid client certificate required";
const RELAYED = /^250 2\.0\.0 Ok: relayed \(250 2\.6\.0 Ok: queued as SINK\d+\)$/;

/** swaks from alice to an address outside the accepted domains: only an authenticated session may relay it. */
function send(listener: string, args: readonly string[], kind: "starttls" | "implicitTls" = "starttls") {
  return swaks(fx.port(listener, kind), ["--from", ALICE.address, "--to", "friend@other.example", ...args], {
    ca: fx.caFile,
  });
}

const passwordAuth = (mechanism: "PLAIN" | "LOGIN", user: string, password: string) => [
  "--auth",
  mechanism,
  "--auth-user",
  user,
  "--auth-password",
  password,
];
const clientCert = (leaf: string) => ["--tls-cert", fx.file(`${leaf}.pem`), "--tls-key", fx.file(`${leaf}.key`)];

/** The relay's reply to the end of DATA as swaks saw it (the last 250 before QUIT, or whatever came instead). */
function dataReply(replies: readonly string[]): string | undefined {
  return replies.at(-2);
}

describe("flow B: LDAP SMTP AUTH (TLS required, AUTH required)", () => {
  it("relays alice's mail after STARTTLS + AUTH PLAIN (swaks): 235 2.7.0, then 250 once the upstream has it", async () => {
    const before = fx.stack.sink.messages.length;
    const result = await send(PASSWORD, [
      "--tls",
      ...passwordAuth("PLAIN", ALICE.user, ALICE.password),
      "--header",
      "Subject: flow B plain",
    ]);
    expect(result.replies).toContain(AUTH_OK);
    expect(dataReply(result.replies)).toMatch(RELAYED);
    expect(result.code).toBe(0);
    const sunk = fx.sunkSince(before);
    expect(sunk).toHaveLength(1);
    expect(sunk[0]).toMatchObject({ from: ALICE.address, to: ["friend@other.example"] });
    const received = receivedHeader(sunk[0]!);
    expect(received).toMatch(
      /^Received: from client\.test \(\[127\.0\.0\.1\]\) by relay\.test \(smtpgate\) with ESMTPSA id \S+ \(TLSv1\.3 \S+\) \(authenticated as alice by ldap-bind\) for <friend@other\.example>;/,
    );
    const text = sunk[0]!.data.toString("utf8");
    expect(text).toContain("Subject: flow B plain");
    expect(text).not.toContain(ALICE.password);
    expect(text).not.toContain(plainBlob(ALICE.user, ALICE.password));
  });

  it("relays with AUTH LOGIN as well", async () => {
    const before = fx.stack.sink.messages.length;
    const result = await send(PASSWORD, ["--tls", ...passwordAuth("LOGIN", ALICE.user, ALICE.password)]);
    expect(result.replies).toContain(AUTH_OK);
    expect(dataReply(result.replies)).toMatch(RELAYED);
    expect(fx.sunkSince(before)).toHaveLength(1);
    expect(receivedHeader(fx.sunkSince(before)[0]!)).toContain("with ESMTPSA");
  });

  it("answers 535 5.7.8 to bob, whose password is right but who is not in smtp-users (allowance query)", async () => {
    const before = fx.stack.sink.messages.length;
    const result = await send(PASSWORD, ["--tls", ...passwordAuth("PLAIN", BOB.user, BOB.password)]);
    expect(result.replies).toContain(AUTH_INVALID);
    expect(result.replies).not.toContain(AUTH_OK);
    expect(result.code).not.toBe(0);
    expect(fx.sunkSince(before)).toHaveLength(0);
  });

  it("answers 535 5.7.8 to a wrong password and to an unknown user alike", async () => {
    const wrong = await send(PASSWORD, ["--tls", ...passwordAuth("PLAIN", ALICE.user, "not-her-password")]);
    const unknown = await send(PASSWORD, ["--tls", ...passwordAuth("LOGIN", "nobody", "whatever")]);
    expect(wrong.replies).toContain(AUTH_INVALID);
    expect(unknown.replies).toContain(AUTH_INVALID);
  });

  it("answers 535 5.7.8 to an empty password (never an unauthenticated bind)", async () => {
    const client = await RawSmtp.connect(fx.port(PASSWORD));
    try {
      expect((await client.submissionLogin(await fx.tls(), ALICE.user, "")).last).toBe(AUTH_INVALID);
      expect((await client.send("MAIL FROM:<alice@example.com>")).last).toBe("530 5.7.0 Authentication required");
    } finally {
      await client.quit();
    }
  });

  it("answers every other command before STARTTLS with 530 5.7.0 under TLS required, but not after TLS", async () => {
    const client = await RawSmtp.connect(fx.port(PASSWORD));
    try {
      await client.ehlo();
      for (const command of ["VRFY alice", "HELP", "EXPN list", "ETRN example.com", "XYZZY"]) {
        expect((await client.send(command)).last).toBe("530 5.7.0 Must issue a STARTTLS command first");
      }
      expect((await client.send("NOOP")).last).toMatch(/^250 /);
      expect((await client.send("RSET")).last).toMatch(/^250 /);
      await client.startTls(await fx.tls());
      await client.ehlo();
      expect((await client.send("HELP")).last).toMatch(/^500 /);
    } finally {
      await client.quit();
    }
  });

  it("offers AUTH only after STARTTLS, and answers AUTH before it with 538 5.7.11", async () => {
    const client = await RawSmtp.connect(fx.port(PASSWORD));
    try {
      const plain = await client.ehlo();
      expect(plain.lines).toContain("250-STARTTLS");
      expect(plain.lines.some((line) => /^250[- ]AUTH\b/.test(line))).toBe(false);
      expect((await client.authPlain(ALICE.user, ALICE.password)).last).toBe(
        "538 5.7.11 Encryption required for requested authentication mechanism",
      );
      await client.startTls(await fx.tls());
      const secure = await client.ehlo();
      expect(secure.lines).toContain("250-AUTH PLAIN LOGIN");
      expect(secure.lines).not.toContain("250-STARTTLS");
    } finally {
      await client.quit();
    }
  });

  it("answers MAIL before STARTTLS with 530 5.7.0 Must issue a STARTTLS command first", async () => {
    const client = await RawSmtp.connect(fx.port(PASSWORD));
    try {
      await client.ehlo();
      expect((await client.send("MAIL FROM:<alice@example.com>")).last).toBe(
        "530 5.7.0 Must issue a STARTTLS command first",
      );
    } finally {
      await client.quit();
    }
  });

  it("answers MAIL after STARTTLS but without AUTH with 530 5.7.0 Authentication required", async () => {
    const client = await RawSmtp.connect(fx.port(PASSWORD));
    try {
      await client.ehlo();
      await client.startTls(await fx.tls());
      await client.ehlo();
      expect((await client.send("MAIL FROM:<alice@example.com>")).last).toBe("530 5.7.0 Authentication required");
    } finally {
      await client.quit();
    }
  });

  it("answers a second AUTH after a successful one with 503 5.5.1", async () => {
    const client = await RawSmtp.connect(fx.port(PASSWORD));
    try {
      expect((await client.submissionLogin(await fx.tls(), ALICE.user, ALICE.password)).last).toBe(AUTH_OK);
      expect((await client.authPlain(ALICE.user, ALICE.password)).last).toMatch(/^503 5\.5\.1 /);
    } finally {
      await client.quit();
    }
  });

  it("answers an unknown mechanism with 504 5.5.4, an undecodable PLAIN with 501 5.5.2 and a cancelled AUTH with 501 5.7.0", async () => {
    const client = await RawSmtp.connect(fx.port(PASSWORD));
    try {
      await client.ehlo();
      await client.startTls(await fx.tls());
      await client.ehlo();
      expect((await client.send("AUTH CRAM-MD5")).last).toBe("504 5.5.4 Unrecognized authentication type");
      expect((await client.send("AUTH PLAIN bm90LXRocmVlLWZpZWxkcw==")).last).toBe("501 5.5.2 Cannot decode response");
      expect((await client.send("AUTH PLAIN")).code).toBe(334);
      expect((await client.send("*")).last).toBe("501 5.7.0 Authentication cancelled");
      expect((await client.send("AUTH LOGIN")).last).toBe("334 VXNlcm5hbWU6");
      expect((await client.send(Buffer.from(ALICE.user).toString("base64"))).last).toBe("334 UGFzc3dvcmQ6");
      expect((await client.send("*")).last).toBe("501 5.7.0 Authentication cancelled");
      // None of these is a failed guess: the right password still gets in.
      expect((await client.authPlain(ALICE.user, ALICE.password)).last).toBe(AUTH_OK);
    } finally {
      await client.quit();
    }
  });

  it("relays over implicit TLS (465-style, swaks --tlsc)", async () => {
    const before = fx.stack.sink.messages.length;
    const result = await send(
      PASSWORD,
      ["--tlsc", ...passwordAuth("PLAIN", ALICE.user, ALICE.password)],
      "implicitTls",
    );
    expect(result.replies[0]).toBe("220 relay.test ESMTP smtpgate");
    expect(result.replies).toContain(AUTH_OK);
    expect(dataReply(result.replies)).toMatch(RELAYED);
    expect(fx.sunkSince(before)).toHaveLength(1);
    expect(receivedHeader(fx.sunkSince(before)[0]!)).toContain("with ESMTPSA");
  });

  it("relays a message from Python's smtplib (STARTTLS, login, sendmail)", async () => {
    const before = fx.stack.sink.messages.length;
    const result = await python(PYTHON_SEND, [
      "starttls",
      String(fx.port(PASSWORD)),
      fx.caFile,
      ALICE.user,
      ALICE.password,
    ]);
    expect(result.stderr).toBe("");
    expect(result.stdout).toMatch(/^login 235 b'2\.7\.0 Authentication succeeded'\nrefused {}\n$/);
    const sunk = fx.sunkSince(before);
    expect(sunk).toHaveLength(1);
    expect(sunk[0]).toMatchObject({ from: ALICE.address, to: ["friend@other.example"] });
    expect(sunk[0]!.data.toString("utf8")).toContain("Subject: from smtplib");
  });

  it("relays over implicit TLS with Python's smtplib.SMTP_SSL", async () => {
    const before = fx.stack.sink.messages.length;
    const result = await python(PYTHON_SEND, [
      "ssl",
      String(fx.port(PASSWORD, "implicitTls")),
      fx.caFile,
      ALICE.user,
      ALICE.password,
    ]);
    expect(result.stderr).toBe("");
    expect(result.stdout).toContain("login 235");
    expect(fx.sunkSince(before)).toHaveLength(1);
  });

  it("relays a message from nodemailer (requireTLS, the relay's CA)", async () => {
    const before = fx.stack.sink.messages.length;
    const transport = nodemailer.createTransport({
      host: "127.0.0.1",
      port: fx.port(PASSWORD),
      secure: false,
      requireTLS: true,
      tls: { ca: fx.caPem, servername: "localhost" },
      auth: { user: ALICE.user, pass: ALICE.password },
    });
    try {
      const info = await transport.sendMail({
        from: ALICE.address,
        to: "friend@other.example",
        subject: "from nodemailer",
        text: "hello",
      });
      expect(info.response).toMatch(RELAYED);
      expect(info.accepted).toEqual(["friend@other.example"]);
    } finally {
      transport.close();
    }
    const sunk = fx.sunkSince(before);
    expect(sunk).toHaveLength(1);
    expect(sunk[0]!.data.toString("utf8")).toContain("Subject: from nodemailer");
    expect(receivedHeader(sunk[0]!)).toContain("(authenticated as alice by ldap-bind)");
  });

  it("refuses nodemailer's AUTH with a wrong password: 535 5.7.8, nothing sent", async () => {
    const before = fx.stack.sink.messages.length;
    const transport = nodemailer.createTransport({
      host: "127.0.0.1",
      port: fx.port(PASSWORD),
      requireTLS: true,
      tls: { ca: fx.caPem, servername: "localhost" },
      auth: { user: ALICE.user, pass: "wrong" },
    });
    try {
      await expect(
        transport.sendMail({ from: ALICE.address, to: "friend@other.example", text: "x" }),
      ).rejects.toMatchObject({ responseCode: 535, response: AUTH_INVALID });
    } finally {
      transport.close();
    }
    expect(fx.sunkSince(before)).toHaveLength(0);
  });
});

describe("flow A: certificate only (TLS required, client certificate verified, AUTH required)", () => {
  it("relays with alice's certificate and no AUTH command (swaks --tls-cert)", async () => {
    const before = fx.stack.sink.messages.length;
    const result = await send(CERT_ONLY, ["--tls", ...clientCert("alice")]);
    expect(result.replies.some((line) => line.startsWith("235"))).toBe(false);
    expect(dataReply(result.replies)).toMatch(RELAYED);
    expect(result.code).toBe(0);
    const sunk = fx.sunkSince(before);
    expect(sunk).toHaveLength(1);
    expect(receivedHeader(sunk[0]!)).toMatch(
      / with ESMTPSA id \S+ \(TLSv1\.3 \S+\) \(authenticated as alice by certificate\) for <friend@other\.example>;/,
    );
  });

  it("does not offer AUTH after the certificate authenticated, and answers AUTH with 503 5.5.1", async () => {
    const client = await RawSmtp.connect(fx.port(CERT_ONLY));
    try {
      await client.ehlo();
      await client.startTls(await fx.tls("alice"));
      const ehlo = await client.ehlo();
      expect(ehlo.code).toBe(250);
      expect(ehlo.lines.some((line) => /^250[- ]AUTH\b/.test(line))).toBe(false);
      expect((await client.authPlain(ALICE.user, ALICE.password)).last).toBe("503 5.5.1 Already authenticated");
      expect((await client.send("MAIL FROM:<alice@example.com>")).last).toBe("250 2.1.0 Accepted");
    } finally {
      await client.quit();
    }
  });

  it.each([
    ["a revoked certificate", "revoked"],
    ["an expired certificate", "expired"],
    ["a certificate from another CA", "otherCa"],
    ["a valid certificate that maps to no directory entry", "carol"],
  ])("answers %s with 554 5.7.1 right after the handshake, then closes", async (_what, leaf) => {
    const client = await RawSmtp.connect(fx.port(CERT_ONLY));
    await client.ehlo();
    await client.startTls(await fx.tls(leaf));
    expect((await client.read()).last).toBe(CERT_REQUIRED);
    await client.closed;
    expect(client.isClosed).toBe(true);
  });

  it("answers a session without a client certificate with 554 5.7.1, then closes (swaks)", async () => {
    const before = fx.stack.sink.messages.length;
    const result = await send(CERT_ONLY, ["--tls"]);
    expect(result.replies).toContain(CERT_REQUIRED);
    expect(`${result.stdout}${result.stderr}`).toContain("Remote host closed connection unexpectedly");
    expect(result.code).not.toBe(0);
    expect(fx.sunkSince(before)).toHaveLength(0);
  });

  it("relays a scripted dialogue from openssl s_client -starttls smtp with alice's certificate", async () => {
    const before = fx.stack.sink.messages.length;
    const result = await opensslStartTls(fx.port(CERT_ONLY), {
      caFile: fx.caFile,
      certFile: fx.file("alice.pem"),
      keyFile: fx.file("alice.key"),
      lines: [
        "EHLO openssl.test",
        "MAIL FROM:<alice@example.com>",
        "RCPT TO:<friend@other.example>",
        "DATA",
        "Subject: via openssl\n\nhello from s_client\n.",
        "QUIT",
      ],
    });
    const replies = result.stdout.split(/\r?\n/).filter((line) => /^\d{3}[ -]/.test(line));
    expect(replies).toContain("250 2.1.0 Accepted");
    expect(replies).toContain("250 2.1.5 Accepted");
    expect(replies).toContain("354 End data with <CR><LF>.<CR><LF>");
    expect(replies.some((line) => RELAYED.test(line))).toBe(true);
    expect(replies).toContain("221 2.0.0 Bye");
    const sunk = fx.sunkSince(before);
    expect(sunk).toHaveLength(1);
    expect(sunk[0]!.data.toString("utf8")).toContain("hello from s_client");
    expect(receivedHeader(sunk[0]!)).toContain("(authenticated as alice by certificate)");
  });
});

describe("flow C: certificate or LDAP (TLS preferred, certificate verified, AUTH required)", () => {
  it("offers AUTH after STARTTLS without a certificate, and relays after AUTH alice", async () => {
    const before = fx.stack.sink.messages.length;
    const result = await send(EITHER, ["--tls", ...passwordAuth("PLAIN", ALICE.user, ALICE.password)]);
    expect(result.replies).toContain("250-AUTH PLAIN LOGIN");
    expect(result.replies).toContain(AUTH_OK);
    expect(dataReply(result.replies)).toMatch(RELAYED);
    expect(receivedHeader(fx.sunkSince(before)[0]!)).toContain("(authenticated as alice by ldap-bind)");
  });

  it("authenticates alice by her certificate alone, without AUTH", async () => {
    const before = fx.stack.sink.messages.length;
    const result = await send(EITHER, ["--tls", ...clientCert("alice")]);
    expect(result.replies.some((line) => /^250[- ]AUTH\b/.test(line))).toBe(false);
    expect(dataReply(result.replies)).toMatch(RELAYED);
    expect(receivedHeader(fx.sunkSince(before)[0]!)).toContain("(authenticated as alice by certificate)");
  });

  it("answers a revoked certificate with 554 5.7.1 and closes (onInvalidCertificate: reject)", async () => {
    const client = await RawSmtp.connect(fx.port(EITHER));
    await client.ehlo();
    await client.startTls(await fx.tls("revoked"));
    expect((await client.read()).last).toBe(CERT_REQUIRED);
    await client.closed;
    expect(client.isClosed).toBe(true);
  });

  it("lets a valid but unmapped certificate fall back to AUTH (allowAuthFallback)", async () => {
    const client = await RawSmtp.connect(fx.port(EITHER));
    try {
      await client.ehlo();
      await client.startTls(await fx.tls("carol"));
      const ehlo = await client.ehlo();
      expect(ehlo.lines).toContain("250-AUTH PLAIN LOGIN");
      expect((await client.send("MAIL FROM:<alice@example.com>")).last).toBe("530 5.7.0 Authentication required");
      expect((await client.authPlain(ALICE.user, ALICE.password)).last).toBe(AUTH_OK);
      expect((await client.send("MAIL FROM:<alice@example.com>")).last).toBe("250 2.1.0 Accepted");
    } finally {
      await client.quit();
    }
  });

  it("answers AUTH in plaintext with 538 5.7.11 and MAIL without AUTH with 530 5.7.0 (TLS only preferred)", async () => {
    const client = await RawSmtp.connect(fx.port(EITHER));
    try {
      await client.ehlo();
      expect((await client.authPlain(ALICE.user, ALICE.password)).last).toBe(
        "538 5.7.11 Encryption required for requested authentication mechanism",
      );
      expect((await client.send("MAIL FROM:<alice@example.com>")).last).toBe("530 5.7.0 Authentication required");
    } finally {
      await client.quit();
    }
  });
});

describe("relay logs", () => {
  it("carry the AsyncOS-style lines for TLS, AUTH and certificates, and never a password", async () => {
    // One session of each kind, so that the lines below do not depend on the other tests.
    expect((await send(PASSWORD, ["--tls", ...passwordAuth("PLAIN", ALICE.user, ALICE.password)])).replies).toContain(
      AUTH_OK,
    );
    expect((await send(PASSWORD, ["--tls", ...passwordAuth("LOGIN", BOB.user, BOB.password)])).replies).toContain(
      AUTH_INVALID,
    );
    expect(dataReply((await send(CERT_ONLY, ["--tls", ...clientCert("alice")])).replies)).toMatch(RELAYED);
    expect((await send(CERT_ONLY, ["--tls", ...clientCert("revoked")])).replies).toContain(CERT_REQUIRED);

    const messages = fx.stack.relays[PASSWORD]!.logs.map((record) => String(record.msg));
    const auth = messages.findLast((line) => line.includes("succeeded for user: alice"));
    expect(auth).toMatch(
      /^SMTP Auth: \(ICID (\d+)\) succeeded for user: alice using AUTH mechanism: PLAIN with profile: corp$/,
    );
    const icid = /ICID (\d+)/.exec(auth ?? "")?.[1];
    expect(messages).toContainEqual(
      expect.stringMatching(new RegExp(`^ICID ${icid} TLS success protocol TLSv1\\.3 cipher \\S+$`)),
    );
    expect(messages).toContainEqual(
      expect.stringMatching(
        /^SMTP Auth: \(ICID \d+\) failed for user: bob using AUTH mechanism: LOGIN reason allowance-failed$/,
      ),
    );
    const certificate = fx.stack.relays[CERT_ONLY]!.logs.map((record) => String(record.msg));
    expect(certificate).toContainEqual(
      expect.stringMatching(/^ICID \d+ Cert Auth: succeeded for user: alice with profile: cert-only$/),
    );
    expect(certificate).toContainEqual(
      expect.stringMatching(/^ICID \d+ Cert Auth: failed reason certificate-revoked$/),
    );

    const everything = allLogs(fx.stack);
    const secrets = [
      ALICE.password,
      BOB.password,
      "not-her-password",
      plainBlob(ALICE.user, ALICE.password),
      Buffer.from(ALICE.password).toString("base64"),
      Buffer.from(BOB.password).toString("base64"),
    ];
    for (const secret of secrets) expect(everything).not.toContain(secret);
    expect(fx.stack.sink.messages.length).toBeGreaterThan(0);
    for (const message of fx.stack.sink.messages) {
      for (const secret of secrets) expect(message.data.toString("utf8")).not.toContain(secret);
    }
  });
});

/** argv: mode (starttls | ssl), port, CA file, user, password. Prints the AUTH reply and the refused recipients. */
const PYTHON_SEND = String.raw`
import smtplib, ssl, sys
mode, port, cafile, user, password = sys.argv[1:6]
context = ssl.create_default_context(cafile=cafile)
message = "From: alice@example.com\r\nTo: friend@other.example\r\nSubject: from smtplib\r\n\r\nhello from python\r\n"
if mode == "ssl":
    client = smtplib.SMTP_SSL("127.0.0.1", int(port), context=context, timeout=10)
else:
    client = smtplib.SMTP("127.0.0.1", int(port), timeout=10)
    client.starttls(context=context)
code, text = client.login(user, password)
print("login", code, text)
print("refused", client.sendmail("alice@example.com", ["friend@other.example"], message))
client.quit()
`;
