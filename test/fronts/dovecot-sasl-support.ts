// For the Dovecot-SASL tests: a line client on a real socket, and a scripted Decider (the decision itself is
// tested against slapd elsewhere; here the protocol around it is under test).
import { connect, type Socket } from "node:net";
import type { AuthRequest, Decider } from "../../contract/decider.ts";
import type { Verdict } from "../../contract/verdict.ts";
import { waitFor } from "../../dev/wait.ts";

export function verdict(kind: Verdict["verdict"], identity: string | null = null): Verdict {
  const smtp = {
    allow: { code: 235, enhanced: "2.7.0", text: "Authentication succeeded" },
    deny: { code: 535, enhanced: "5.7.8", text: "Authentication credentials invalid" },
    tempfail: { code: 454, enhanced: "4.7.0", text: "Temporary authentication failure" },
    continue: null,
  }[kind];
  return {
    verdict: kind,
    authenticated: kind === "allow",
    method: "ldap-bind",
    identity,
    dn: identity === null ? null : `uid=${identity},ou=people,dc=example,dc=com`,
    temporary: false,
    reason: kind === "allow" ? "ok" : kind === "deny" ? "invalid-credentials" : "directory-unavailable",
    retryAfter: null,
    addresses: null,
    smtp,
    close: false,
    profile: "password",
    decisionId: "test",
  };
}

/** alice/secret is allowed (identity `alice`), `down` tempfails, `confused` gets no answer, `slow-*` waits. */
export class ScriptedDecider implements Decider {
  readonly requests: AuthRequest[] = [];

  decideTls(): Promise<Verdict> {
    return Promise.reject(new Error("not used"));
  }

  async decideAuth(request: AuthRequest): Promise<Verdict> {
    this.requests.push(request);
    const { username, password } = request;
    if (username.startsWith("slow-")) await new Promise((resolve) => setTimeout(resolve, Math.random() * 200));
    if (username === "down") return verdict("tempfail");
    if (username === "confused") throw new Error("the API answered 502");
    if (username === "tab\tuser") return verdict("allow", "tab\tuser");
    if ((username === "alice" || username.startsWith("slow-")) && password === "secret")
      return verdict("allow", username.replace(/^slow-/, ""));
    return verdict("deny");
  }
}

export interface LineClient {
  socket: Socket;
  /** Every line received so far. */
  lines: string[];
  send(text: string): void;
  /** Waits for the next line that starts with `prefix` (after the ones already taken) and returns it. */
  next(prefix: string, timeoutMs?: number): Promise<string>;
  /** Resolves when the server has closed or reset the connection. */
  closed: Promise<"closed" | "reset">;
  close(): void;
}

export async function connectLineClient(target: { port: number } | { path: string }): Promise<LineClient> {
  const socket = connect("port" in target ? { host: "127.0.0.1", port: target.port } : { path: target.path });
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  const lines: string[] = [];
  let partial = "";
  const taken = new Set<number>();
  socket.setEncoding("utf8");
  socket.on("data", (text: string) => {
    const parts = (partial + text).split("\n");
    partial = parts.pop() ?? "";
    lines.push(...parts);
  });
  const closed = new Promise<"closed" | "reset">((resolve) => {
    let reset = false;
    socket.on("error", (error: NodeJS.ErrnoException) => (reset ||= error.code === "ECONNRESET"));
    socket.on("close", () => resolve(reset ? "reset" : "closed"));
  });
  return {
    socket,
    lines,
    send: (text) => void socket.write(text),
    async next(prefix, timeoutMs = 3_000) {
      let found = -1;
      await waitFor(
        () => (found = lines.findIndex((line, index) => !taken.has(index) && line.startsWith(prefix))) >= 0,
        { timeoutMs, what: `a line starting with ${JSON.stringify(prefix)}` },
      );
      taken.add(found);
      return lines[found] as string;
    },
    closed,
    close: () => socket.destroy(),
  };
}

export const b64 = (text: string): string => Buffer.from(text, "utf8").toString("base64");
