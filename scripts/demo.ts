/**
 * The demo: the whole smtpgate stack on loopback, in the foreground until Ctrl-C, then everything stops and the
 * throw-away directory is removed.
 *
 *   npm run demo
 *
 *   decision API   http://127.0.0.1:8787 (token demo-token)
 *   edge relay     STARTTLS 127.0.0.1:2525, implicit TLS 127.0.0.1:4650, listener "cert-or-password" (flow C)
 *   upstream sink  writes every relayed message to .demo/mail/; also the upstream of nginx's mail proxy (XCLIENT)
 *   nginx          GET /v1/nginx/auth/cert-or-password is its auth_http URL (docs/integrations/nginx.md)
 *   client PKI     .demo/pki/ (root.pem, alice.pem/.key, revoked.pem/.key, ...)
 *   API config     .demo/smtpgate.yaml and .demo/api.env, for `smtpgate check` and `smtpgate test-auth`
 *   for Postfix    Dovecot-SASL socket 127.0.0.1:12345, policy server 127.0.0.1:10040 (listener "password")
 *
 * Users: alice / alice-password (in cn=smtp-users: allowed), bob / bob-password (not in the group: the
 * allowance query fails and the listener rejects, by password and by certificate alike). The relay binds the
 * envelope sender to the login (senderLogin: enforce): alice may send as alice@example.com only.
 */
import { readFile, rm } from "node:fs/promises";
import { join, relative } from "node:path";
import { writeDemoConfig } from "../dev/demo-config.ts";
import { STACK_LISTENERS, startStack } from "../dev/stack.ts";

const ROOT = join(import.meta.dirname, "..");
const DEMO = join(ROOT, ".demo");
const MAIL = join(DEMO, "mail");
const PKI = join(DEMO, "pki");
const TOKEN = "demo-token";
const API_PORT = Number(process.env.SMTPGATE_DEMO_API_PORT ?? 8787);
const STARTTLS_PORT = Number(process.env.SMTPGATE_DEMO_SMTP_PORT ?? 2525);
const IMPLICIT_PORT = Number(process.env.SMTPGATE_DEMO_SMTPS_PORT ?? 4650);
// The ports docs/integrations/postfix.md uses: its main.cf snippets work against the demo as they are.
const SASL_ADDRESS = process.env.SMTPGATE_DEMO_SASL ?? "127.0.0.1:12345";
const POLICY_ADDRESS = process.env.SMTPGATE_DEMO_POLICY ?? "127.0.0.1:10040";
const POSTFIX_SNIPPETS = ["postfix-sasl.main.cf", "postfix-policy.main.cf"].map((file) =>
  join(ROOT, "docs", "integrations", file),
);
const show = (path: string) => relative(process.cwd(), path) || ".";

await rm(DEMO, { recursive: true, force: true });
let count = 0;
const stack = await startStack({
  listeners: [STACK_LISTENERS.either],
  apiPort: API_PORT,
  apiToken: TOKEN,
  relayPorts: { starttls: STARTTLS_PORT, implicitTls: IMPLICIT_PORT },
  relay: { limits: { authFailureDelayMs: 1000 } },
  fronts: {
    dovecotSasl: [{ listen: SASL_ADDRESS, listener: STACK_LISTENERS.password }],
    postfixPolicy: [{ listen: POLICY_ADDRESS, listener: STACK_LISTENERS.password }],
  },
  mailFolder: MAIL,
  pkiFolder: PKI,
  onMessage: (message) => {
    count += 1;
    process.stderr.write(
      `sink: message ${count} from <${message.from}> to ${message.to.map((to) => `<${to}>`).join(", ")}, ${message.data.length} bytes -> ${show(message.file ?? "")}\n`,
    );
  },
});

// The tested snippets, with the demo's addresses where they name smtpgate's sockets.
const mainCf = (await Promise.all(POSTFIX_SNIPPETS.map((file) => readFile(file, "utf8"))))
  .join("")
  .replace("inet:127.0.0.1:12345", `inet:${SASL_ADDRESS}`)
  .replace("inet:127.0.0.1:10040", `inet:${POLICY_ADDRESS}`)
  .trimEnd()
  .split("\n")
  .map((line) => `    ${line}`)
  .join("\n");
const demoConfig = await writeDemoConfig(stack, DEMO, { apiToken: TOKEN, apiPort: API_PORT, cwd: process.cwd() });

// Echo the relay's AsyncOS-style lines, the parts an operator reads.
const relay = stack.relays[STACK_LISTENERS.either];
if (relay) {
  let seen = 0;
  setInterval(() => {
    for (const record of relay.logs.slice(seen)) process.stderr.write(`relay: ${String(record.msg)}\n`);
    seen = relay.logs.length;
  }, 200).unref();
}

const pki = show(PKI);
const swaks = `swaks --server 127.0.0.1:${STARTTLS_PORT} --from alice@example.com --to friend@elsewhere.example`;
process.stderr.write(`
smtpgate demo is running (Ctrl-C to stop and clean up)
  decision API   ${stack.api.url}  (token: ${TOKEN})
  edge relay     STARTTLS 127.0.0.1:${STARTTLS_PORT}, implicit TLS 127.0.0.1:${IMPLICIT_PORT} (listener ${STACK_LISTENERS.either})
  upstream sink  relayed mail is written to ${show(MAIL)}/
  client PKI     ${pki}/  (root.pem; alice, carol and revoked .pem + .key; relay-ca.pem for the relay's certificate)
  OpenLDAP       ${stack.slapd.ldapUrl} (StartTLS), ${stack.slapd.ldapsUrl}

Try it (in another terminal, from this directory); the listener is flow C, so each way in works:
  password only:                ${swaks} --tls --auth PLAIN --auth-user alice --auth-password alice-password
  ... not in smtp-users (535):  ${swaks} --tls --auth LOGIN --auth-user bob --auth-password bob-password
  certificate only, no AUTH:    ${swaks} --tls --tls-cert ${pki}/alice.pem --tls-key ${pki}/alice.key
  revoked certificate (554):    ${swaks} --tls --tls-cert ${pki}/revoked.pem --tls-key ${pki}/revoked.key
  bob's valid certificate (554, not in smtp-users, like his password):
                                ${swaks} --tls --tls-cert ${pki}/bob.pem --tls-key ${pki}/bob.key
  not alice's address (553):    swaks --server 127.0.0.1:${STARTTLS_PORT} --from bob@example.com --to friend@elsewhere.example --tls --auth PLAIN --auth-user alice --auth-password alice-password
  certificate, then password:   ${swaks} --tls --tls-cert ${pki}/carol.pem --tls-key ${pki}/carol.key --auth PLAIN --auth-user alice --auth-password alice-password
                                (carol's certificate is valid but maps to no entry, so AUTH decides)
  implicit TLS:                 swaks --server 127.0.0.1:${IMPLICIT_PORT} --tlsc --from alice@example.com --to friend@elsewhere.example --auth PLAIN --auth-user alice --auth-password alice-password
  nginx's mail proxy:           start nginx with dev/nginx/mail.conf (docs/integrations/nginx.md), whose auth_http lines are
                                  auth_http ${stack.api.url}/v1/nginx/auth/${STACK_LISTENERS.either};
                                  auth_http_header Authorization "Bearer ${TOKEN}";
                                it hands allowed sessions to the sink (127.0.0.1:${stack.sink.port}, XCLIENT on)
  the API directly:             curl -s -H 'Authorization: Bearer ${TOKEN}' -d '{"listener":"password","client":{"ip":"192.0.2.10"},"mechanism":"PLAIN","username":"alice","password":"alice-password"}' ${stack.api.url}/v1/decide/auth

Postfix can use smtpgate with no glue (listener ${STACK_LISTENERS.password}): the Dovecot-SASL socket on ${SASL_ADDRESS}, the
policy server on ${POLICY_ADDRESS}; in a Postfix main.cf (docs/integrations/postfix.md, both snippets tested):
${mainCf}
  (the second smtpd_relay_restrictions replaces the first: use the one you want)

The API's configuration is in ${show(demoConfig.config)} (secrets in ${show(demoConfig.env)}); try the smtpgate command on it:
  check it, and every directory host:   ${demoConfig.commands.check}
  a test query, step by step (allowed): ${demoConfig.commands.testAuth}
  ... bob, refused by the allowance:    ${demoConfig.commands.testAuthDenied}

`);

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  process.stderr.write(
    "\nstopping: relay, sink, API, slapd; removing the throw-away directory (relayed mail stays in .demo/mail until the next run)\n",
  );
  await stack.close();
  process.exit(0);
};
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
