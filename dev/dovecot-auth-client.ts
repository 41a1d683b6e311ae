// A client of the Dovecot authentication protocol, version 1, as an MTA speaks it (Postfix's
// src/xsasl/xsasl_dovecot_server.c): VERSION and CPID, the server's handshake up to DONE, then
// `AUTH <id> PLAIN service=smtp secured rip=... resp=<base64>` requests, pipelined on one connection, each answered
// by OK or FAIL with its id. It drives Dovecot's auth service and smtpgate's Dovecot-protocol front alike (the
// benchmark, dev/dovecot.test.ts). The line splitting and tab-unescaping are the front's (fronts/dovecot-sasl/).
import net from "node:net";
import { splitLine, tabEscape } from "../fronts/dovecot-sasl/protocol.ts";

export interface AuthAnswer {
  ok: boolean;
  /** The answer's fields after the id, unescaped: `user=alice`, `reason=...`. */
  fields: string[];
}

export interface DovecotAuthClient {
  /** The mechanisms the server's handshake offered (MECH lines). */
  mechanisms: string[];
  /** One PLAIN request; resolves with OK or FAIL, rejects on CONT, a malformed line or a lost connection. */
  plain(username: string, password: string): Promise<AuthAnswer>;
  close(): void;
}

export interface DovecotAuthClientOptions {
  port: number;
  host?: string;
  /** `rip=` of every request (the SMTP client's address; smtpgate's front refuses a request without one). */
  clientIp?: string;
  /**
   * `no-penalty`: Dovecot then keeps no failure count for the client's address (it does even without rip=, by the
   * connection's peer), which delays each later failure by seconds. For tests of refusals; Postfix sends no such flag.
   */
  noPenalty?: boolean;
}

/** Connects and completes the handshake. */
export async function connectDovecotAuth(options: DovecotAuthClientOptions): Promise<DovecotAuthClient> {
  const socket = net.connect({ port: options.port, host: options.host ?? "127.0.0.1" });
  socket.setNoDelay(true);
  const pending = new Map<number, { resolve: (answer: AuthAnswer) => void; reject: (error: Error) => void }>();
  const mechanisms: string[] = [];
  let failure: Error | null = null;
  let buffer = "";
  let handshakeDone: () => void = () => {};
  let handshakeFailed: (error: Error) => void = () => {};
  const handshake = new Promise<void>((resolve, reject) => {
    handshakeDone = resolve;
    handshakeFailed = reject;
  });
  let nextId = 1;

  const fail = (error: Error): void => {
    failure ??= error;
    handshakeFailed(error);
    for (const waiting of pending.values()) waiting.reject(error);
    pending.clear();
    socket.destroy();
  };
  const onLine = (line: string): void => {
    const parsed = splitLine(line);
    if (parsed === null) return fail(new Error(`malformed line from the auth server: ${JSON.stringify(line)}`));
    const { command, args } = parsed;
    if (command === "MECH") mechanisms.push(args[0] ?? "");
    else if (command === "DONE") handshakeDone();
    else if (command === "OK" || command === "FAIL" || command === "CONT") {
      const id = Number(args[0]);
      const waiting = pending.get(id);
      if (waiting === undefined) return fail(new Error(`answer to no request: ${JSON.stringify(line)}`));
      pending.delete(id);
      if (command === "CONT") waiting.reject(new Error(`CONT for a PLAIN request with an initial response: ${line}`));
      // Dovecot ends an OK line with a TAB: no field is empty.
      else waiting.resolve({ ok: command === "OK", fields: args.slice(1).filter((field) => field !== "") });
    }
    // VERSION, SPID, CUID, COOKIE: nothing a client of the SASL service needs.
  };
  socket.on("data", (chunk: Buffer) => {
    const lines = (buffer + chunk.toString("utf8")).split("\n");
    buffer = lines.pop() ?? "";
    for (const line of lines) onLine(line);
  });
  socket.on("error", (error) => fail(error));
  socket.on("close", () => fail(new Error("the auth server closed the connection")));
  socket.write(`VERSION\t1\t2\nCPID\t${process.pid}\n`);
  await handshake;

  return {
    mechanisms,
    plain: (username, password) => {
      if (failure) return Promise.reject(failure);
      const id = nextId++;
      const response = Buffer.from(`\u0000${username}\u0000${password}`, "utf8").toString("base64");
      const params = [
        "service=smtp",
        "secured",
        ...(options.clientIp ? [`rip=${tabEscape(options.clientIp)}`] : []),
        ...(options.noPenalty ? ["no-penalty"] : []),
      ];
      return new Promise<AuthAnswer>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        socket.write(`AUTH\t${id}\tPLAIN\t${params.join("\t")}\tresp=${response}\n`);
      });
    },
    close: () => {
      failure ??= new Error("closed");
      socket.destroy();
    },
  };
}
