// Real SMTP clients for the relay's end-to-end tests: swaks, openssl s_client and Python's smtplib as child
// processes, and a raw socket client (node:net, upgraded in place with node:tls) for the dialogues those tools
// refuse to hold: AUTH before STARTTLS, plaintext pipelined behind STARTTLS, bare-LF DATA, odd RCPT forms.
import { execFile, spawn } from "node:child_process";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { waitFor } from "../../dev/wait.ts";

const HOST = "127.0.0.1";
/** The relay's server certificate (from slapd.pki) names 127.0.0.1 and localhost. */
const SERVER_NAME = "localhost";

/** One SMTP reply: every line as sent, the code, and the last line (what a test usually compares). */
export interface Reply {
  code: number;
  lines: string[];
  /** The final line, e.g. "535 5.7.8 Authentication credentials invalid". */
  last: string;
}

export interface ClientTls {
  /** PEM CA bundle that must have issued the relay's certificate. */
  ca: string;
  cert?: string;
  key?: string;
}

export interface ToolResult {
  /** Exit code (null when killed by the timeout). */
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion with a timeout, never throwing for a non-zero exit. */
export function run(
  command: string,
  args: readonly string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<ToolResult> {
  return new Promise((resolve) => {
    const child = execFile(
      command,
      args,
      {
        timeout: options.timeoutMs ?? 15_000,
        maxBuffer: 16 * 1024 * 1024,
        env: { ...process.env, ...options.env },
        ...(options.cwd ? { cwd: options.cwd } : {}),
      },
      (error, stdout, stderr) => {
        const code = error
          ? typeof (error as { code?: unknown }).code === "number"
            ? (error as { code: number }).code
            : null
          : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    child.stdin?.end(options.input ?? "");
  });
}

export interface SwaksResult extends ToolResult {
  /** The server's reply lines as swaks printed them ("<-", "<~" and "<**" prefixes removed). */
  replies: string[];
}

/**
 * swaks against the relay on 127.0.0.1. `args` are swaks options (`--port` is added; give `--tls`, `--auth`,
 * `--tls-cert` ... as needed). The relay's CA is trusted and verified unless `ca` is null.
 */
export async function swaks(
  port: number,
  args: readonly string[],
  options: { ca?: string | null; timeoutMs?: number } = {},
): Promise<SwaksResult> {
  const tlsArgs = options.ca ? ["--tls-ca-path", options.ca, "--tls-verify"] : [];
  const result = await run(
    "swaks",
    ["--server", HOST, "--port", String(port), "--helo", "client.test", "--hide-informational", ...tlsArgs, ...args],
    {
      timeoutMs: options.timeoutMs ?? 20_000,
    },
  );
  const replies = result.stdout
    .split("\n")
    .map((line) => /^<(?:-|~|\*\*|~\*)\s+(.*)$/.exec(line)?.[1])
    .filter((line): line is string => line !== undefined);
  return { ...result, replies };
}

/** Python 3 with a script on stdin; arguments come in sys.argv[1:]. */
export function python(script: string, args: readonly string[] = [], timeoutMs = 20_000): Promise<ToolResult> {
  return run("python3", ["-", ...args], { input: script, timeoutMs });
}

/**
 * `openssl s_client -starttls smtp` with a scripted dialogue: each line is written once the relay has answered the
 * one before (s_client does not wait for replies itself; with -quiet its stdout holds only the server's replies
 * after the handshake, one final `NNN ` line per command). Returns everything s_client printed. Lines written
 * before the relay's certificate decision wait in the TLS socket: smtp-server reads commands only after it.
 */
export function opensslStartTls(
  port: number,
  options: {
    caFile: string;
    certFile?: string;
    keyFile?: string;
    lines: readonly string[];
    timeoutMs?: number;
  },
): Promise<ToolResult> {
  const args = [
    "s_client",
    "-starttls",
    "smtp",
    "-connect",
    `${HOST}:${port}`,
    "-CAfile",
    options.caFile,
    "-verify_return_error",
    "-servername",
    SERVER_NAME,
    "-quiet",
    "-crlf",
  ];
  if (options.certFile && options.keyFile) args.push("-cert", options.certFile, "-key", options.keyFile);
  const timeoutMs = options.timeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    const child = spawn("openssl", args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let closed = false;
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      closed = true;
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    const replies = () => stdout.split(/\r?\n/).filter((line) => /^\d{3} /.test(line)).length;
    void (async () => {
      for (const [index, line] of options.lines.entries()) {
        if (closed || child.stdin.destroyed) break;
        child.stdin.write(`${line}\n`);
        const answered = await waitFor(() => closed || replies() > index, { timeoutMs, what: `a reply to ${line}` })
          .then(() => !closed)
          .catch(() => false);
        if (!answered) break;
      }
      child.stdin.end();
    })();
  });
}

/** AUTH PLAIN's initial response: base64 of "\0user\0password". */
export function plainBlob(user: string, password: string): string {
  return Buffer.from(`\u0000${user}\u0000${password}`, "utf8").toString("base64");
}

/**
 * A raw SMTP client on one socket: reads replies line by line, can write anything (pipelined commands, bare
 * LFs, half lines) and upgrade the very same socket to TLS after STARTTLS.
 */
export class RawSmtp {
  #socket: Socket | TLSSocket;
  #buffer = "";
  readonly #replies: Reply[] = [];
  #partial: string[] = [];
  #waiter: (() => void) | null = null;
  #closed = false;
  /** Resolves when the server has closed the connection (or it failed). */
  readonly closed: Promise<void>;
  #markClosed!: () => void;
  greeting!: Reply;

  private constructor(socket: Socket | TLSSocket) {
    this.#socket = socket;
    this.closed = new Promise((resolve) => (this.#markClosed = resolve));
    this.#attach(socket);
  }

  /** Connects and reads the greeting; with `implicitTls` the connection is TLS from the first byte (465). */
  static async connect(port: number, options: { implicitTls?: ClientTls } = {}): Promise<RawSmtp> {
    const socket = options.implicitTls
      ? await new Promise<TLSSocket>((resolve, reject) => {
          const s = tlsConnect({ host: HOST, port, servername: SERVER_NAME, ...options.implicitTls }, () => resolve(s));
          s.once("error", reject);
        })
      : await new Promise<Socket>((resolve, reject) => {
          const s = netConnect({ host: HOST, port }, () => resolve(s));
          s.once("error", reject);
        });
    const client = new RawSmtp(socket);
    client.greeting = await client.read();
    return client;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  get socket(): Socket | TLSSocket {
    return this.#socket;
  }

  /** Whatever arrived after the last complete reply and has not been read (complete replies included). */
  unread(): string {
    return [...this.#replies.flatMap((reply) => reply.lines), ...this.#partial].join("\r\n") + this.#buffer;
  }

  write(data: string | Buffer): void {
    this.#socket.write(data);
  }

  /** Writes one command line (CRLF added) and reads its reply. */
  async send(line: string, timeoutMs?: number): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.read(timeoutMs);
  }

  /** The next complete reply; rejects if none comes in time or the connection closes first. */
  async read(timeoutMs = 10_000): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const reply = this.#replies.shift();
      if (reply) return reply;
      if (this.#closed)
        throw new Error(`connection closed while waiting for a reply (unread: ${JSON.stringify(this.#buffer)})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms (unread: ${JSON.stringify(this.#buffer)})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#waiter = null;
    }
  }

  async ehlo(name = "client.test"): Promise<Reply> {
    return this.send(`EHLO ${name}`);
  }

  /** STARTTLS, then the TLS handshake on the same socket; returns the 220 reply. */
  async startTls(tls: ClientTls): Promise<Reply> {
    const reply = await this.send("STARTTLS");
    if (reply.code !== 220) throw new Error(`STARTTLS refused: ${reply.last}`);
    await this.upgrade(tls);
    return reply;
  }

  /** The TLS handshake on the current socket (after a 220 to STARTTLS that the caller has read). */
  async upgrade(tls: ClientTls): Promise<TLSSocket> {
    const plain = this.#socket;
    plain.removeAllListeners("data");
    plain.removeAllListeners("close");
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ socket: plain, servername: SERVER_NAME, ...tls }, () => resolve(s));
      s.once("error", reject);
    });
    this.#socket = secure;
    this.#attach(secure);
    return secure;
  }

  /** AUTH PLAIN with an initial response. */
  authPlain(user: string, password: string): Promise<Reply> {
    return this.send(`AUTH PLAIN ${plainBlob(user, password)}`);
  }

  /** EHLO, STARTTLS, EHLO again, AUTH PLAIN: the usual submission preamble; returns the AUTH reply. */
  async submissionLogin(tls: ClientTls, user: string, password: string): Promise<Reply> {
    await this.ehlo();
    await this.startTls(tls);
    await this.ehlo();
    return this.authPlain(user, password);
  }

  /** Sends QUIT (if still open) and closes the socket. */
  async quit(): Promise<void> {
    if (!this.#closed) {
      try {
        await this.send("QUIT", 2_000);
      } catch {
        // the server may already be gone
      }
    }
    this.#socket.destroy();
  }

  #attach(socket: Socket | TLSSocket): void {
    socket.on("data", (chunk: Buffer) => {
      this.#buffer += chunk.toString("latin1");
      this.#parse();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.#closed = true;
      this.#markClosed();
      this.#waiter?.();
    });
  }

  #parse(): void {
    for (let end = this.#buffer.indexOf("\r\n"); end >= 0; end = this.#buffer.indexOf("\r\n")) {
      const line = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      this.#partial.push(line);
      if (/^\d{3}(?: |$)/.test(line)) {
        this.#replies.push({ code: Number(line.slice(0, 3)), lines: this.#partial, last: line });
        this.#partial = [];
      }
    }
    this.#waiter?.();
  }
}
