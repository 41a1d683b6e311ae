// nginx's auth_http endpoint on the Workers build, inside workerd, against the loopback slapd and CRL server: the
// same answers as the Node runtime gives the real nginx in test/nginx/nginx-auth.test.ts.
import { SELF } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import { NGINX_UPSTREAM, pemOf, TEST_TOKEN } from "./fixture.ts";

const fixture = inject("workers");

/** A GET as nginx sends it; the answer headers nginx reads. */
async function askLikeNginx(listener: string, headers: Record<string, string>): Promise<Record<string, string>> {
  const response = await SELF.fetch(`https://smtpgate.test/v1/nginx/auth/${listener}`, {
    headers: {
      Authorization: `Bearer ${TEST_TOKEN}`,
      "Auth-Protocol": "smtp",
      "Auth-Login-Attempt": "1",
      "Client-IP": "192.0.2.7",
      "Auth-SSL": "on",
      "Auth-SSL-Protocol": "TLSv1.3",
      "Auth-SSL-Cipher": "TLS_AES_256_GCM_SHA384",
      ...headers,
    },
  });
  expect(response.status).toBe(200);
  await response.body?.cancel();
  return Object.fromEntries(
    [...response.headers].filter(([name]) => name.startsWith("auth-")).map(([name, value]) => [name, value]),
  );
}

const byPassword = (user: string, password: string) => ({
  "Auth-Method": "plain",
  "Auth-User": user,
  "Auth-Pass": password,
});
/** No AUTH, the client's certificate as nginx passes it: escaped PEM, the leaf only. */
const byCertificate = (leaf: keyof typeof fixture.chains) => ({
  "Auth-Method": "none",
  "Auth-User": "",
  "Auth-Pass": "",
  "Auth-SSL-Verify": "SUCCESS",
  "Auth-SSL-Cert": pemOf(fixture.chains[leaf][0] as string).replace(/\n/g, "%0A"),
});

describe("GET /v1/nginx/auth/:listener on Workers", () => {
  it("hands alice's session upstream after her password", async () => {
    expect(await askLikeNginx("nginx", byPassword("alice", "alice-password"))).toEqual({
      "auth-status": "OK",
      "auth-server": NGINX_UPSTREAM.address,
      "auth-port": String(NGINX_UPSTREAM.port),
      "auth-user": "alice",
    });
  });

  it("refuses bob by the allowance, keeping the connection (Auth-Wait)", async () => {
    expect(await askLikeNginx("nginx", byPassword("bob", "bob-password"))).toEqual({
      "auth-status": "Authentication credentials invalid",
      "auth-error-code": "535 5.7.8",
      "auth-wait": "1",
    });
  });

  it("lets alice in by her leaf certificate, the intermediate taken from the profile", async () => {
    expect(await askLikeNginx("nginx", byCertificate("alice"))).toMatchObject({
      "auth-status": "OK",
      // The AsyncOS-style certificate query finds alice's certificate entry, whose user ID this is.
      "auth-user": "alice.cert",
    });
  });

  it("refuses a revoked certificate and lets nginx close", async () => {
    expect(await askLikeNginx("nginx", byCertificate("revoked"))).toEqual({
      "auth-status": "Valid client certificate required",
      "auth-error-code": "554 5.7.1",
    });
  });

  it("answers 454 4.7.0 when the directory is down", async () => {
    expect(await askLikeNginx("nginx-down", byPassword("alice", "alice-password"))).toMatchObject({
      "auth-error-code": "454 4.7.0",
    });
  });
});
