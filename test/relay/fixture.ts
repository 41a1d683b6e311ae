// One whole smtpgate stack per test file (slapd, client PKI + CRL server, API, sink, one relay per listener of
// STACK_LISTENERS) with the client PKI written to a temp folder so that swaks and openssl can read it.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SEED } from "../../dev/slapd/index.ts";
import { startStack, STACK_LISTENERS, type Stack, type StackOptions } from "../../dev/stack.ts";
import type { SunkMessage } from "../../dev/sink.ts";
import type { ClientTls } from "./clients.ts";

export { STACK_LISTENERS };

export const ALICE = { user: "alice", password: SEED.users.alice.password, address: "alice@example.com" } as const;
export const BOB = { user: "bob", password: SEED.users.bob.password } as const;

export interface RelayFixture {
  stack: Stack;
  /** Folder with the client PKI (`alice.pem`, `alice.key`, `revoked.pem`, ...) and `relay-ca.pem`. */
  dir: string;
  /** Path of a file in `dir`, e.g. file("alice.pem"). */
  file(name: string): string;
  /** The CA file that issued the relay's server certificate. */
  caFile: string;
  caPem: string;
  /** TLS options of a raw client: trust the relay's CA, optionally present a client certificate by leaf name. */
  tls(leaf?: string): Promise<ClientTls>;
  port(listener: string, kind?: "starttls" | "implicitTls"): number;
  /** Messages the sink received after `since` (a previous messages.length). */
  sunkSince(since: number): SunkMessage[];
  close(): Promise<void>;
}

export async function startRelayFixture(options: StackOptions = {}): Promise<RelayFixture> {
  const dir = await mkdtemp(join(tmpdir(), "smtpgate-relay-e2e-"));
  let stack: Stack;
  try {
    stack = await startStack({ ...options, pkiFolder: dir });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const file = (name: string): string => join(dir, name);
  const caFile = file("relay-ca.pem");
  const caPem = await readFile(caFile, "utf8");
  return {
    stack,
    dir,
    file,
    caFile,
    caPem,
    async tls(leaf) {
      if (!leaf) return { ca: caPem };
      return {
        ca: caPem,
        cert: await readFile(file(`${leaf}.pem`), "utf8"),
        key: await readFile(file(`${leaf}.key`), "utf8"),
      };
    },
    port(listener, kind = "starttls") {
      const port = stack.relays[listener]?.ports[kind];
      if (port === undefined) throw new Error(`no ${kind} port for listener ${listener}`);
      return port;
    },
    sunkSince(since) {
      return stack.sink.messages.slice(since);
    },
    async close() {
      await stack.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Everything a listener's relay and the API logged, as one string: for "no password anywhere" checks. */
export function allLogs(stack: Stack): string {
  return JSON.stringify([stack.api.logs, ...Object.values(stack.relays).map((relay) => relay.logs)]);
}

/** The `Received:` header the relay put on top of a message (unfolded). */
export function receivedHeader(message: SunkMessage): string {
  const text = message.data.toString("utf8");
  const match = /^Received:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*/.exec(text);
  return match ? match[0].replace(/\r\n[ \t]+/g, " ") : "";
}
