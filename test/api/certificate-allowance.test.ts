// One group gate for both ways in: a certificate query with the allowance query of the SMTP AUTH query, so bob
// (valid certificate, right password, not in smtp-users) is refused either way. A real slapd, a generated PKI.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_TOKENS_CONFIG, slapdDirectory, startTestApi, type TestApi } from "../../dev/api.ts";
import { CAC_SCHEMA, certUsersLdif } from "../../dev/client-pki/directory-entries.ts";
import { generateClientPki, type ClientPki } from "../../dev/client-pki/index.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";

let slapd: SlapdInstance;
let pki: ClientPki;
let api: TestApi;

const { alice, bob } = SEED.users;
const GATE = { filter: `(&(uid={u})(memberOf=${SEED.smtpUsersGroupDn}))` };

beforeAll(async () => {
  pki = await generateClientPki();
  slapd = await startSlapd({ extraSchema: CAC_SCHEMA, extraLdif: certUsersLdif(pki) });
  const profile = (extra: Record<string, unknown>) => ({
    type: "certificate" as const,
    query: "by-mail",
    trustAnchors: { pem: pki.rootPem },
    ...extra,
  });
  api = await startTestApi(
    {
      directories: {
        corp: slapdDirectory(slapd),
      },
      smtpAuthQueries: { corp: { directory: "corp", allowance: GATE } },
      // bob's certificate carries bob@example.com: it maps to uid=bob,ou=people, who is in no group.
      certificateQueries: { "by-mail": { directory: "corp", filter: "(mail={email})", allowance: GATE } },
      authProfiles: {
        corp: { type: "ldap", query: "corp" },
        "cert-only": profile({}),
        "cert-or-password": profile({ allowAuthFallback: "corp" }),
        "cert-then-password": profile({ allowAuthFallback: "corp", onInvalidCertificate: "fallback" }),
      },
      listeners: {
        "cert-only": { authProfile: "cert-only" },
        "cert-or-password": { authProfile: "cert-or-password" },
        "cert-then-password": { authProfile: "cert-then-password" },
        lenient: { authProfile: "cert-only", onAllowanceFailure: "allow-temporarily" },
      },
      api: { ...API_TOKENS_CONFIG, maxBodyBytes: 1024 * 1024 },
    },
    { BIND_PW: SEED.servicePassword },
  );
});

afterAll(async () => {
  await api?.close();
  await slapd?.close();
});

const connection = {
  session: "s1",
  client: { ip: "192.0.2.7", helo: "laptop.example" },
  tls: { version: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256" },
};

async function decide(path: "tls" | "auth", body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const response = await api.post(`/v1/decide/${path}`, { ...connection, ...body });
  if (response.status !== 200) throw new Error(`decide/${path}: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body;
}

const tls = (listener: string, leaf: "alice" | "bob") =>
  decide("tls", { listener, certificate: { chain: pki.chain(leaf) } });
const auth = (listener: string, user: { uid: string; password: string }, leaf: "alice" | "bob" | null = null) =>
  decide("auth", {
    listener,
    mechanism: "PLAIN",
    username: user.uid,
    password: user.password,
    certificate: leaf === null ? null : { chain: pki.chain(leaf) },
  });

const CERTIFICATE_REFUSED = {
  verdict: "deny",
  authenticated: false,
  method: "certificate",
  reason: "allowance-failed",
  smtp: { code: 554, enhanced: "5.7.1" },
  close: true,
};

describe("a certificate under the allowance query", () => {
  it("lets alice in with her identity and addresses", async () => {
    expect(await tls("cert-or-password", "alice")).toMatchObject({
      verdict: "allow",
      identity: "alice",
      dn: alice.dn,
      addresses: [alice.mail],
    });
  });

  it("refuses bob's valid certificate like his password, on each listener that rejects", async () => {
    expect(await tls("cert-only", "bob")).toMatchObject({ ...CERTIFICATE_REFUSED, dn: bob.dn });
    expect(await tls("cert-or-password", "bob")).toMatchObject(CERTIFICATE_REFUSED);
    expect(await auth("cert-or-password", bob)).toMatchObject({ verdict: "deny", reason: "allowance-failed" });
    const line = api.logs.findLast((record) => record.msg === "decision" && record.kind === "tls");
    expect(line).toMatchObject({ filter: `(&(uid=bob)(memberOf=${SEED.smtpUsersGroupDn}))`, base: SEED.baseDn });
  });

  it("does not let a refused certificate fall back to someone's password unless the profile says fallback", async () => {
    expect(await auth("cert-or-password", alice, "bob")).toMatchObject(CERTIFICATE_REFUSED);
    expect(await tls("cert-then-password", "bob")).toMatchObject({ verdict: "continue", reason: "allowance-failed" });
    expect(await auth("cert-then-password", alice, "bob")).toMatchObject({ verdict: "allow", identity: "alice" });
  });

  it("follows a listener that allows temporarily", async () => {
    expect(await tls("lenient", "bob")).toMatchObject({
      verdict: "allow",
      identity: "bob",
      temporary: true,
      reason: "allowance-failed",
      smtp: { code: 235 },
    });
  });
});
