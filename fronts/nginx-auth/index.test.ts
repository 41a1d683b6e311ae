// The nginx front's mapping, over a recording Decider: nginx's headers to decision requests, verdicts to answer
// headers. The real nginx in front of the real API is test/nginx/nginx-auth.test.ts.
import { describe, expect, it } from "vitest";
import type { AuthRequest, Decider, TlsRequest } from "../../contract/decider.ts";
import { SMTP_REPLIES } from "../../contract/smtp-replies.ts";
import type { Verdict } from "../../contract/verdict.ts";
import type { LogRecord } from "../../lib/json-lines.ts";
import { xtext } from "./answer.ts";
import { createNginxAuth, REFUSAL_WAIT_SECONDS } from "./index.ts";
import { certificateFromEscapedPem, decodeMailAuthText } from "./request.ts";

const UPSTREAM = { address: "192.0.2.10", port: 2525 };
const DER_BASE64 = Buffer.from("not really DER, but base64 all the same").toString("base64");
const PEM = `-----BEGIN CERTIFICATE-----\n${DER_BASE64.slice(0, 20)}\n${DER_BASE64.slice(20)}\n-----END CERTIFICATE-----\n`;
/** As nginx sends it: NGX_ESCAPE_MAIL_AUTH turns the line feeds (and any space or "%") into %XX. */
const ESCAPED_PEM = PEM.replace(/\n/g, "%0A");

function verdict(fields: Partial<Verdict>): Verdict {
  return {
    verdict: "allow",
    authenticated: true,
    method: "ldap-bind",
    identity: "alice",
    dn: "uid=alice,ou=people,dc=example,dc=com",
    temporary: false,
    reason: "ok",
    retryAfter: null,
    addresses: null,
    smtp: SMTP_REPLIES.authSucceeded,
    close: false,
    profile: "corp",
    decisionId: "d-1",
    ...fields,
  };
}

function harness(
  answer: Verdict | Error = verdict({}),
  upstreams: Record<string, typeof UPSTREAM> = { submission: UPSTREAM },
) {
  const asked: { kind: "tls" | "auth"; request: TlsRequest | AuthRequest }[] = [];
  const logs: LogRecord[] = [];
  const reply = async (): Promise<Verdict> => {
    if (answer instanceof Error) throw answer;
    return answer;
  };
  const decider: Decider = {
    decideTls: (request) => (asked.push({ kind: "tls", request }), reply()),
    decideAuth: (request) => (asked.push({ kind: "auth", request }), reply()),
  };
  const nginx = createNginxAuth({ decider, upstreamOf: (listener) => upstreams[listener], log: (r) => logs.push(r) });
  const ask = (headers: Record<string, string>, listener = "submission") =>
    nginx.answer(listener, (name) => headers[name.toLowerCase()] ?? headers[name]);
  return { asked, logs, ask };
}

const PASSWORD_REQUEST = {
  "Auth-Method": "plain",
  "Auth-User": "alice",
  "Auth-Pass": "s3cret%20with%25percent",
  "Auth-Protocol": "smtp",
  "Auth-Login-Attempt": "1",
  "Client-IP": "198.51.100.7",
  "Auth-SSL": "on",
  "Auth-SSL-Protocol": "TLSv1.3",
  "Auth-SSL-Cipher": "TLS_AES_256_GCM_SHA384",
};

describe("nginx's escaping", () => {
  it("decodes %XX (controls, space, %) and UTF-8 sent one byte a character", () => {
    expect(decodeMailAuthText("a%20b%25c%0D%0Ad")).toBe("a b%c\r\nd");
    expect(decodeMailAuthText(Buffer.from("pässwörd", "utf8").toString("latin1"))).toBe("pässwörd");
    expect(decodeMailAuthText("100%zz")).toBe("100%zz");
  });

  it("refuses bytes that are not UTF-8 instead of guessing", () => {
    expect(decodeMailAuthText("\xff\xfe")).toBeNull();
  });

  it("reads exactly one PEM certificate", () => {
    expect(certificateFromEscapedPem(ESCAPED_PEM)).toBe(DER_BASE64);
    expect(certificateFromEscapedPem(`${ESCAPED_PEM}${ESCAPED_PEM}`)).toBeNull();
    expect(certificateFromEscapedPem("garbage")).toBeNull();
  });

  it("writes identities as xtext for XCLIENT LOGIN=", () => {
    expect(xtext("alice")).toBe("alice");
    expect(xtext("a b=c+d")).toBe("a+20b+3Dc+2Bd");
    expect(xtext("jörg")).toBe("j+C3+B6rg");
  });
});

describe("the nginx front", () => {
  it("asks the AUTH decision with the decoded password and hands an allow upstream as the canonical identity", async () => {
    const { asked, ask } = harness(verdict({ identity: "alice smith" }));
    expect(await ask(PASSWORD_REQUEST)).toEqual({
      "Auth-Status": "OK",
      "Auth-Server": "192.0.2.10",
      "Auth-Port": "2525",
      "Auth-User": "alice+20smith",
    });
    expect(asked).toEqual([
      {
        kind: "auth",
        request: {
          listener: "submission",
          client: { ip: "198.51.100.7" },
          tls: { version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384" },
          mechanism: "PLAIN",
          username: "alice",
          password: "s3cret with%percent",
          certificate: null,
        },
      },
    ]);
  });

  it("passes nginx's leaf certificate with a password, for certificate profiles", async () => {
    const { asked, ask } = harness();
    await ask({ ...PASSWORD_REQUEST, "Auth-SSL-Verify": "SUCCESS", "Auth-SSL-Cert": ESCAPED_PEM });
    expect((asked[0]?.request as AuthRequest).certificate).toEqual({ chain: [DER_BASE64] });
  });

  it("gives a refusal's reply with Auth-Wait, so nginx keeps the connection", async () => {
    const { ask } = harness(
      verdict({ verdict: "deny", reason: "invalid-credentials", smtp: SMTP_REPLIES.authInvalid }),
    );
    expect(await ask(PASSWORD_REQUEST)).toEqual({
      "Auth-Status": "Authentication credentials invalid",
      "Auth-Error-Code": "535 5.7.8",
      "Auth-Wait": String(REFUSAL_WAIT_SECONDS),
    });
  });

  it("lets nginx close when the verdict closes, and waits no longer than 30 s", async () => {
    const closing = harness(verdict({ verdict: "deny", smtp: SMTP_REPLIES.certificateRequired, close: true }));
    expect(await closing.ask(PASSWORD_REQUEST)).toEqual({
      "Auth-Status": "Valid client certificate required",
      "Auth-Error-Code": "554 5.7.1",
    });
    const slow = harness(verdict({ verdict: "tempfail", smtp: SMTP_REPLIES.authTemporaryFailure, retryAfter: 900 }));
    expect(await slow.ask(PASSWORD_REQUEST)).toMatchObject({ "Auth-Error-Code": "454 4.7.0", "Auth-Wait": "30" });
  });

  it("decides a session without AUTH by its certificate, the leaf as the chain", async () => {
    const { asked, ask } = harness(verdict({ method: "certificate" }));
    const request = {
      ...PASSWORD_REQUEST,
      "Auth-Method": "none",
      "Auth-User": "",
      "Auth-Pass": "",
      "Auth-SMTP-Helo": "client.example",
      "Auth-SSL-Verify": "SUCCESS",
      "Auth-SSL-Cert": ESCAPED_PEM,
    };
    expect(await ask(request)).toMatchObject({ "Auth-Status": "OK", "Auth-User": "alice" });
    expect(asked).toEqual([
      {
        kind: "tls",
        request: {
          listener: "submission",
          client: { ip: "198.51.100.7", helo: "client.example" },
          tls: { version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384" },
          certificate: { chain: [DER_BASE64] },
        },
      },
    ]);
  });

  it("refuses a session with neither AUTH nor a certificate decision: 530 5.7.0", async () => {
    const { ask } = harness(verdict({ verdict: "continue", reason: "certificate-missing", smtp: null }));
    const none = { ...PASSWORD_REQUEST, "Auth-Method": "none", "Auth-User": "", "Auth-Pass": "" };
    expect(await ask(none)).toMatchObject({ "Auth-Error-Code": "530 5.7.0" });
    const { asked, ask: askPlain } = harness();
    expect(await askPlain({ ...none, "Auth-SSL": "" })).toMatchObject({ "Auth-Error-Code": "530 5.7.0" });
    expect(asked).toEqual([]);
  });

  it.each(["cram-md5", "apop", "external", ""])(
    "refuses Auth-Method %j as unsupported, asking nobody",
    async (method) => {
      const { asked, ask, logs } = harness();
      expect(await ask({ ...PASSWORD_REQUEST, "Auth-Method": method })).toMatchObject({
        "Auth-Error-Code": "504 5.5.4",
      });
      expect(asked).toEqual([]);
      expect(logs).toHaveLength(1);
    },
  );

  it("answers 454 4.7.0 and logs, never a password, when there is no decision", async () => {
    const { ask, logs } = harness(new Error("API unreachable"));
    expect(await ask(PASSWORD_REQUEST)).toEqual({
      "Auth-Status": "Temporary authentication failure",
      "Auth-Error-Code": "454 4.7.0",
      "Auth-Wait": String(REFUSAL_WAIT_SECONDS),
    });
    expect(logs).toMatchObject([{ level: "warn", problem: "no decision: API unreachable" }]);
    expect(JSON.stringify(logs)).not.toContain("s3cret");
  });

  it("answers 454 without asking for a listener without upstream, another protocol, or a withheld certificate", async () => {
    const { asked, ask, logs } = harness();
    const cases = [
      ask(PASSWORD_REQUEST, "nowhere"),
      ask({ ...PASSWORD_REQUEST, "Auth-Protocol": "imap" }),
      ask({ ...PASSWORD_REQUEST, "Auth-SSL-Verify": "SUCCESS" }),
      ask({ ...PASSWORD_REQUEST, "Auth-SSL-Cert": "%0Anot-a-pem" }),
    ];
    for (const answer of await Promise.all(cases)) expect(answer["Auth-Error-Code"]).toBe("454 4.7.0");
    expect(asked).toEqual([]);
    expect(logs.map((record) => record.problem)).toEqual([
      'listener "nowhere" has no upstream',
      'Auth-Protocol "imap": smtpgate answers for smtp only',
      expect.stringContaining("auth_http_pass_client_cert on"),
      "Auth-SSL-Cert is not one PEM certificate",
    ]);
  });

  it("refuses a password that is not UTF-8 with 501 5.5.2, asking nobody", async () => {
    const { asked, ask } = harness();
    expect(await ask({ ...PASSWORD_REQUEST, "Auth-Pass": "\xff" })).toMatchObject({ "Auth-Error-Code": "501 5.5.2" });
    expect(asked).toEqual([]);
  });
});
