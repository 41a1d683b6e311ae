// The Dovecot-SASL server on real sockets: the handshake, PLAIN and LOGIN, the verdict mapping, tab-escaping, and
// hostile input (over-long lines, no handshake, NUL bytes, unknown mechanisms and commands, pipelining, 1,000
// requests in flight, slow clients). The Decider is scripted: the decision is tested against slapd elsewhere.
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { LogRecord } from "../../lib/json-lines.ts";
import { SEED } from "../../dev/slapd/seed.ts";
import { waitFor } from "../../dev/wait.ts";
import {
  b64,
  connectLineClient,
  ScriptedDecider,
  verdict,
  type LineClient,
} from "../../test/fronts/dovecot-sasl-support.ts";
import { createDovecotSaslServer, type DovecotSaslServer } from "./index.ts";
import { tabEscape, tabUnescape } from "./protocol.ts";

const POSTFIX_PARAMS = "service=smtp\tnologin\tlip=127.0.0.1\trip=192.0.2.7";
const plain = (user: string, password: string, authzid = ""): string => b64(`${authzid}\0${user}\0${password}`);

let decider: ScriptedDecider;
let logs: LogRecord[];
let server: DovecotSaslServer;
let port: number;

beforeAll(async () => {
  decider = new ScriptedDecider();
  logs = [];
  server = createDovecotSaslServer({ decider, listener: "password", log: (record) => logs.push(record) });
  await server.listen({ host: "127.0.0.1", port: 0 });
  port = server.port as number;
});

afterAll(() => server.close(100));

beforeEach(() => {
  decider.requests.length = 0;
  logs.length = 0;
});

/** A client past the handshake, as Postfix (and Exim) start one: protocol version 1.0 unless told. */
async function client(minorVersion = 0): Promise<LineClient> {
  const connection = await connectLineClient({ port });
  await connection.next("DONE");
  connection.send(`VERSION\t1\t${minorVersion}\nCPID\t${process.pid}\n`);
  return connection;
}

async function expectClosedWithLog(connection: LineClient, problem: RegExp): Promise<void> {
  expect(await connection.closed).toBe("reset");
  expect(connection.lines.filter((line) => line.startsWith("OK"))).toEqual([]);
  expect(logs).toContainEqual(expect.objectContaining({ level: "warn", problem: expect.stringMatching(problem) }));
}

describe("handshake", () => {
  it("sends VERSION, the MECH lines before SPID, CUID, COOKIE and DONE as soon as a client connects", async () => {
    const connection = await connectLineClient({ port });
    await connection.next("DONE");
    expect(connection.lines.slice(0, 7)).toEqual([
      "VERSION\t1\t2",
      "MECH\tPLAIN\tplaintext",
      "MECH\tLOGIN\tplaintext",
      `SPID\t${process.pid}`,
      expect.stringMatching(/^CUID\t\d+$/),
      expect.stringMatching(/^COOKIE\t[0-9a-f]{32}$/),
      "DONE",
    ]);
    connection.close();
  });

  it("closes a connection that sends AUTH without the handshake", async () => {
    const connection = await connectLineClient({ port });
    connection.send(`AUTH\t1\tPLAIN\t${POSTFIX_PARAMS}\tresp=${plain("alice", "secret")}\n`);
    await expectClosedWithLog(connection, /AUTH before VERSION/);
    expect(decider.requests).toEqual([]);
  });

  it("closes a connection that speaks another major version, or skips CPID", async () => {
    const other = await connectLineClient({ port });
    other.send("VERSION\t2\t0\n");
    await expectClosedWithLog(other, /protocol version 2/);
    const noCpid = await connectLineClient({ port });
    noCpid.send(`VERSION\t1\t0\nAUTH\t1\tPLAIN\t${POSTFIX_PARAMS}\tresp=${plain("alice", "secret")}\n`);
    await expectClosedWithLog(noCpid, /AUTH before CPID/);
    expect(decider.requests).toEqual([]);
  });
});

describe("PLAIN and LOGIN", () => {
  it("answers OK with the verdict's identity, and asks with the client's address and the TLS fact", async () => {
    const connection = await client();
    connection.send(`AUTH\t7\tPLAIN\t${POSTFIX_PARAMS}\tsecured\tresp=${plain("alice", "secret")}\n`);
    expect(await connection.next("OK")).toBe("OK\t7\tuser=alice");
    expect(decider.requests).toEqual([
      expect.objectContaining({
        listener: "password",
        client: { ip: "192.0.2.7" },
        tls: { version: "unknown", cipher: "unknown" },
        mechanism: "PLAIN",
        username: "alice",
        password: "secret",
        authzid: null,
      }),
    ]);
    connection.send(`AUTH\t8\tplain\t${POSTFIX_PARAMS}\tresp=${plain("alice", "secret", "boss")}\n`);
    expect(await connection.next("OK")).toBe("OK\t8\tuser=alice");
    expect(decider.requests[1]).toMatchObject({ tls: null, authzid: "boss" });
    connection.close();
  });

  it("asks for PLAIN's response with an empty CONT when the client sent no initial response", async () => {
    const connection = await client();
    connection.send(`AUTH\t1\tPLAIN\t${POSTFIX_PARAMS}\n`);
    expect(await connection.next("CONT")).toBe("CONT\t1\t");
    connection.send(`CONT\t1\t${plain("alice", "secret")}\n`);
    expect(await connection.next("OK")).toBe("OK\t1\tuser=alice");
    connection.close();
  });

  it("takes LOGIN in two CONT steps, or one after an initial response with the user name", async () => {
    const connection = await client();
    connection.send(`AUTH\t1\tLOGIN\t${POSTFIX_PARAMS}\n`);
    expect(await connection.next("CONT")).toBe(`CONT\t1\t${b64("Username:")}`);
    connection.send(`CONT\t1\t${b64("alice")}\n`);
    expect(await connection.next("CONT")).toBe(`CONT\t1\t${b64("Password:")}`);
    connection.send(`CONT\t1\t${b64("secret")}\n`);
    expect(await connection.next("OK")).toBe("OK\t1\tuser=alice");
    connection.send(`AUTH\t2\tLOGIN\t${POSTFIX_PARAMS}\tresp=${b64("alice")}\n`);
    expect(await connection.next("CONT")).toBe(`CONT\t2\t${b64("Password:")}`);
    connection.send(`CONT\t2\t${b64("secret")}\n`);
    expect(await connection.next("OK")).toBe("OK\t2\tuser=alice");
    expect(decider.requests.map((request) => request.mechanism)).toEqual(["LOGIN", "LOGIN"]);
    connection.close();
  });

  it("reads an empty resp= as no initial response from a 1.0 client (Exim's bare AUTH), as an empty one from 1.2", async () => {
    const exim = await client();
    exim.send(`AUTH\t1\tLOGIN\t${POSTFIX_PARAMS}\tresp=\n`);
    expect(await exim.next("CONT")).toBe(`CONT\t1\t${b64("Username:")}`);
    exim.send(`AUTH\t2\tPLAIN\t${POSTFIX_PARAMS}\tresp=\n`);
    expect(await exim.next("CONT")).toBe("CONT\t2\t");
    exim.send(`AUTH\t3\tPLAIN\t${POSTFIX_PARAMS}\tresp==\n`);
    expect(await exim.next("FAIL")).toMatch(/^FAIL\t3\treason=/);
    exim.close();
    const newer = await client(2);
    newer.send(`AUTH\t1\tLOGIN\t${POSTFIX_PARAMS}\tresp=\n`);
    expect(await newer.next("CONT")).toBe(`CONT\t1\t${b64("Password:")}`);
    newer.close();
    expect(decider.requests).toEqual([]);
  });

  it("answers a deny with FAIL that names the user but never which of name or password was wrong", async () => {
    const connection = await client();
    connection.send(`AUTH\t3\tPLAIN\t${POSTFIX_PARAMS}\tresp=${plain("alice", "wrong")}\n`);
    expect(await connection.next("FAIL")).toBe("FAIL\t3\tuser=alice\treason=Authentication credentials invalid");
    connection.send(`AUTH\t4\tPLAIN\t${POSTFIX_PARAMS}\tresp=${plain("nobody", "secret")}\n`);
    expect(await connection.next("FAIL")).toBe("FAIL\t4\tuser=nobody\treason=Authentication credentials invalid");
    connection.send(`AUTH\t5\tPLAIN\t${POSTFIX_PARAMS}\tresp=${plain("alice", "secret")}\n`);
    expect(await connection.next("OK")).toBe("OK\t5\tuser=alice");
    connection.close();
  });

  it("resets the connection on a tempfail verdict and on no verdict, and never answers FAIL then", async () => {
    for (const user of ["down", "confused"]) {
      const connection = await client();
      connection.send(`AUTH\t1\tPLAIN\t${POSTFIX_PARAMS}\tresp=${plain(user, "secret")}\n`);
      expect(await connection.closed).toBe("reset");
      expect(connection.lines.filter((line) => /^(OK|FAIL)/.test(line))).toEqual([]);
      expect(logs).toContainEqual(expect.objectContaining({ level: "warn", request: 1, user }));
    }
  });

  it("refuses what is not strict base64 of UTF-8 without asking for a decision", async () => {
    const connection = await client();
    connection.send(`AUTH\t1\tPLAIN\t${POSTFIX_PARAMS}\tresp=@@@@\n`);
    expect(await connection.next("FAIL")).toBe("FAIL\t1\treason=Cannot decode response");
    connection.send(`AUTH\t2\tPLAIN\t${POSTFIX_PARAMS}\tresp=${b64("alice").replace(/=+$/, "")}\n`);
    expect(await connection.next("FAIL")).toBe("FAIL\t2\treason=Cannot decode response");
    connection.send(`AUTH\t3\tPLAIN\t${POSTFIX_PARAMS}\tresp=${Buffer.from([0, 0x61, 0, 0xff]).toString("base64")}\n`);
    expect(await connection.next("FAIL")).toBe("FAIL\t3\treason=Cannot decode response");
    connection.send(`AUTH\t4\tPLAIN\t${POSTFIX_PARAMS}\tresp=${b64("alice\0secret")}\n`);
    expect(await connection.next("FAIL")).toBe("FAIL\t4\treason=Syntax error in parameters or arguments");
    connection.send(`AUTH\t5\tLOGIN\t${POSTFIX_PARAMS}\n`);
    await connection.next("CONT");
    connection.send(`CONT\t5\t*\n`);
    expect(await connection.next("FAIL")).toBe("FAIL\t5\treason=Cannot decode response");
    expect(decider.requests).toEqual([]);
    connection.close();
  });

  it("answers FAIL for a mechanism it does not offer and keeps the connection", async () => {
    const connection = await client();
    connection.send(`AUTH\t1\tCRAM-MD5\t${POSTFIX_PARAMS}\n`);
    expect(await connection.next("FAIL")).toBe("FAIL\t1\treason=Unrecognized authentication type");
    connection.send(`AUTH\t2\tPLAIN\t${POSTFIX_PARAMS}\tresp=${plain("alice", "secret")}\n`);
    expect(await connection.next("OK")).toBe("OK\t2\tuser=alice");
    connection.close();
  });

  it("ignores optional parameters it does not know, flags and name=value pairs alike", async () => {
    const connection = await client();
    const extra = "lport=587\trport=40000\tvalid-client-cert\tno-penalty\tsession=abc\tfuture-flag\tx=\ty=1=2";
    connection.send(`AUTH\t1\tPLAIN\t${POSTFIX_PARAMS}\t${extra}\tresp=${plain("alice", "secret")}\n`);
    expect(await connection.next("OK")).toBe("OK\t1\tuser=alice");
    connection.close();
  });
});

describe("the recorded Postfix 3.7.11 transcript", () => {
  it("answers Postfix's lines as recorded, and resets where the directory was down", async () => {
    const fixture = await readFile(new URL("./fixtures/postfix-3.7.11.txt", import.meta.url), "utf8");
    const lines = fixture.trimEnd().split("\n");
    // As in the recording: alice's password is good, bob fails the allowance query, the 7th decision finds the
    // directory down.
    let calls = 0;
    const recorded = createDovecotSaslServer({
      decider: {
        decideTls: () => Promise.reject(new Error("not used")),
        decideAuth: async (request) => {
          calls += 1;
          if (calls === 7) return verdict("tempfail");
          return request.username === "alice" && request.password === SEED.users.alice.password
            ? verdict("allow", "alice")
            : verdict("deny");
        },
      },
      listener: "password",
      log: () => {},
    });
    await recorded.listen({ host: "127.0.0.1", port: 0 });
    const connection = await connectLineClient({ port: recorded.port as number });
    // Line by line, as Postfix spoke: each client line once the server lines recorded before it have come.
    let answers = 0;
    for (const line of lines) {
      if (line.startsWith("S: ")) answers += 1;
      else {
        await waitFor(() => connection.lines.length >= answers, { what: `${answers} server lines` });
        connection.send(`${line.slice(3)}\n`);
      }
    }
    expect(await connection.closed).toBe("reset");
    const anonymise = (line: string): string => line.replace(/^(SPID|CUID|COOKIE)\t.*$/, "$1\t<varies>");
    const expected = lines.filter((each) => each.startsWith("S: ")).map((each) => anonymise(each.slice(3)));
    expect(expected.length).toBeGreaterThan(15);
    expect(connection.lines.map(anonymise)).toEqual(expected);
    await recorded.close(0);
  });
});

describe("tab-escaping", () => {
  it("unescapes \\001 with 0, 1, t, r and both LF letters, and a letter it does not know as itself", () => {
    expect(tabUnescape("a\u00010b\u00011c\u0001td\u0001re\u0001nf\u0001lg\u0001xh")).toBe("a\0b\u0001c\td\re\nf\ngxh");
    expect(tabUnescape("plain")).toBe("plain");
  });

  it("escapes what it sends, so that an identity cannot add a field", () => {
    expect(tabEscape("a\tb\nc\u0001d\0e\rf")).toBe("a\u0001tb\u0001nc\u00011d\u00010e\u0001rf");
  });

  it("reads escaped fields in a request and escapes the identity in OK", async () => {
    const connection = await client();
    connection.send(`AUTH\t1\tPLAIN\tservice=sm\u0001ltp\trip=192.0.2.7\tresp=${plain("tab\tuser", "x")}\n`);
    expect(await connection.next("OK")).toBe("OK\t1\tuser=tab\u0001tuser");
    connection.close();
  });
});

describe("hostile input", () => {
  it("closes a connection whose line passes 16 KiB, whole or in pieces", async () => {
    const whole = await client();
    whole.send(`AUTH\t1\tPLAIN\t${POSTFIX_PARAMS}\tresp=${"A".repeat(16 * 1024)}\n`);
    await expectClosedWithLog(whole, /a line over 16384 bytes/);
    const pieces = await client();
    for (let i = 0; i < 20; i += 1) pieces.send("A".repeat(1024));
    await expectClosedWithLog(pieces, /a line over 16384 bytes/);
  });

  it("closes a connection that sends a NUL byte, an unknown command or an empty line", async () => {
    for (const [line, problem] of [
      [`AUTH\t1\tPLAIN\t${POSTFIX_PARAMS}\tresp=\0\n`, /raw NUL/],
      ["CANCEL\t1\n", /unknown command CANCEL/],
      ["\n", /not a command line/],
    ] as const) {
      const connection = await client();
      connection.send(line);
      await expectClosedWithLog(connection, problem);
    }
  });

  it("closes a connection that reuses an id in flight, continues no request, or leaves out the id or service", async () => {
    for (const [lines, problem] of [
      [`AUTH\t1\tLOGIN\t${POSTFIX_PARAMS}\nAUTH\t1\tLOGIN\t${POSTFIX_PARAMS}\n`, /id of a request in flight/],
      [`CONT\t9\t${b64("alice")}\n`, /CONT for no request/],
      [`AUTH\tone\tPLAIN\t${POSTFIX_PARAMS}\n`, /numeric request id/],
      [`AUTH\t1\tPLAIN\trip=192.0.2.7\tresp=${plain("alice", "secret")}\n`, /without service=/],
    ] as const) {
      const connection = await client();
      connection.send(lines);
      await expectClosedWithLog(connection, problem);
    }
    expect(decider.requests).toEqual([]);
  });

  it("answers pipelined requests sent in one write, each by its id", async () => {
    const connection = await client();
    connection.send(
      [
        `AUTH\t11\tPLAIN\t${POSTFIX_PARAMS}\tresp=${plain("alice", "secret")}`,
        `AUTH\t12\tPLAIN\t${POSTFIX_PARAMS}\tresp=${plain("alice", "wrong")}`,
        `AUTH\t13\tLOGIN\t${POSTFIX_PARAMS}`,
        `CONT\t13\t${b64("alice")}`,
        `CONT\t13\t${b64("secret")}`,
        "",
      ].join("\n"),
    );
    expect(await connection.next("OK\t11")).toBe("OK\t11\tuser=alice");
    expect(await connection.next("FAIL\t12")).toMatch(/^FAIL\t12\tuser=alice\treason=/);
    expect(await connection.next("OK\t13")).toBe("OK\t13\tuser=alice");
    connection.close();
  });

  it("answers 1,000 requests in flight on one connection by id, in the order their decisions come", async () => {
    const connection = await client();
    const ids = Array.from({ length: 1000 }, (_, index) => index + 1);
    connection.send(
      ids.map((id) => `AUTH\t${id}\tPLAIN\t${POSTFIX_PARAMS}\tresp=${plain(`slow-u${id}`, "secret")}\n`).join(""),
    );
    for (const id of ids) expect(await connection.next(`OK\t${id}\t`, 10_000)).toBe(`OK\t${id}\tuser=u${id}`);
    const answered = connection.lines.filter((line) => line.startsWith("OK")).map((line) => line.split("\t")[1]);
    expect(answered).not.toEqual(ids.map(String));
    connection.close();
  });

  it("serves a slow client that sends one byte at a time", async () => {
    const connection = await client();
    const request = `AUTH\t1\tPLAIN\t${POSTFIX_PARAMS}\tresp=${plain("alice", "secret")}\n`;
    for (const byte of request) {
      connection.send(byte);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    expect(await connection.next("OK")).toBe("OK\t1\tuser=alice");
    connection.close();
  });
});

describe("sockets", () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "smtpgate-sasl-"));
  });

  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("listens on a unix socket with the mode asked for, replacing a stale socket file", async () => {
    const path = join(dir, "auth");
    const first = createDovecotSaslServer({ decider, listener: "password", log: () => {} });
    await first.listen({ path, mode: 0o600 });
    await first.close(0);
    const unix = createDovecotSaslServer({ decider, listener: "password", log: () => {} });
    expect(await unix.listen({ path, mode: 0o660 })).toBe(path);
    expect((await stat(path)).mode & 0o777).toBe(0o660);
    const connection = await connectLineClient({ path });
    await connection.next("DONE");
    connection.send(`VERSION\t1\t0\nCPID\t1\nAUTH\t1\tPLAIN\t${POSTFIX_PARAMS}\tresp=${plain("alice", "secret")}\n`);
    expect(await connection.next("OK")).toBe("OK\t1\tuser=alice");
    await unix.close(0);
    expect(await connection.closed).toBe("closed");
  });

  it("on close, answers the requests in flight before it resets their connection", async () => {
    const closing = createDovecotSaslServer({ decider, listener: "password", log: () => {} });
    await closing.listen({ host: "127.0.0.1", port: 0 });
    const connection = await connectLineClient({ port: closing.port as number });
    await connection.next("DONE");
    connection.send(`VERSION\t1\t0\nCPID\t1\nAUTH\t1\tPLAIN\t${POSTFIX_PARAMS}\tresp=${plain("slow-a", "secret")}\n`);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await closing.close(2_000);
    expect(connection.lines).toContain("OK\t1\tuser=a");
    expect(await connection.closed).toBe("reset");
  });
});
