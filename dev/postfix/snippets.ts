// The main.cf lines the docs show for Postfix asking smtpgate for SMTP AUTH (docs/integrations/postfix-sasl.main.cf),
// as the tests and the benchmark use them: byte for byte, but the address of smtpgate's Dovecot-protocol socket.
import { readFile } from "node:fs/promises";

const SASL_SNIPPET = new URL("../../docs/integrations/postfix-sasl.main.cf", import.meta.url);
/** The address the docs' lines name (the demo's). */
const SASL_SNIPPET_ADDRESS = "127.0.0.1:12345";

/** The docs' SASL lines; with `address` (host:port), pointed there instead. */
export async function postfixSaslMainCf(address?: string): Promise<string> {
  const text = await readFile(SASL_SNIPPET, "utf8");
  return address === undefined ? text : text.replace(SASL_SNIPPET_ADDRESS, address);
}
