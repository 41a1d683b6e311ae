// SMTP AUTH through a real MTA (Postfix, Exim) that asks smtpgate: swaks as the client (STARTTLS, then AUTH), and
// the logins every such test refuses.
import { swaksTranscript } from "./postfix/swaks.ts";
import { SEED } from "./slapd/index.ts";

/**
 * swaks' transcript of a session with the MTA on 127.0.0.1:`port`: STARTTLS, AUTH `mechanism` as `user`, then the
 * `more` swaks options (a message: --from, --to), or QUIT right after AUTH without them.
 */
export function swaksAuth(
  port: number,
  mechanism: "PLAIN" | "LOGIN",
  user: string,
  password: string,
  more: string[] = [],
): Promise<string> {
  const args = ["--tls", "--auth", mechanism, "--auth-user", user, "--auth-password", password];
  return swaksTranscript(port, [...args, ...(more.length > 0 ? more : ["--quit-after", "AUTH"])]);
}

/**
 * What an MTA must refuse as bad credentials (535) with dev/api.ts's passwordGateConfig: a wrong password each way,
 * an unknown user, and bob (right password), whom the allowance query leaves out.
 */
export const REFUSED_LOGINS: ReadonlyArray<readonly ["PLAIN" | "LOGIN", string, string]> = [
  ["PLAIN", "alice", "wrong"],
  ["LOGIN", "alice", "wrong"],
  ["PLAIN", "bob", SEED.users.bob.password],
  ["LOGIN", "nobody", "whatever"],
];
