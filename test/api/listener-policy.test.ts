// GET /v1/listeners/{name}: what a relay loads to enforce a listener.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_TOKENS_CONFIG, TEST_TOKEN, startTestApi, type TestApi } from "../../dev/api.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";

let slapd: SlapdInstance;
let api: TestApi;

beforeAll(async () => {
  slapd = await startSlapd();
  api = await startTestApi({
    directories: { corp: { hosts: [slapd.ldapUrl], tls: { caFile: slapd.pki.caFile }, baseDn: SEED.baseDn } },
    smtpAuthQueries: { q: { directory: "corp" } },
    authProfiles: { corp: { type: "ldap", query: "q" } },
    mailFlowPolicies: {
      RELAYED: { behaviour: "relay", tls: "required", smtpAuth: "required" },
      ACCEPTED: { behaviour: "accept" },
      BLOCKED: { behaviour: "reject" },
      UNUSED: { behaviour: "tcprefuse" },
    },
    listeners: {
      submission: {
        authProfile: "corp",
        hostAccessTable: [
          { name: "BLOCKLIST", match: ["192.0.2.66"], policy: "BLOCKED" },
          { name: "RELAYLIST", match: ["10.0.0.0/8", "2001:db8::/32"], policy: "RELAYED" },
          { name: "ALL", match: ["0.0.0.0/0", "::/0"], policy: "ACCEPTED" },
        ],
        acceptedDomains: ["Example.COM"],
      },
    },
    api: API_TOKENS_CONFIG,
  });
});

afterAll(async () => {
  await api?.close();
  await slapd?.close();
});

function get(path: string, headers: Record<string, string> = {}) {
  return fetch(`${api.url}${path}`, { headers: { Authorization: `Bearer ${TEST_TOKEN}`, ...headers } });
}

describe("GET /v1/listeners/{name}", () => {
  it("returns the host access table in order, the policies it uses with their defaults, and the accepted domains", async () => {
    const response = await get("/v1/listeners/submission");
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      listener: "submission",
      authProfile: { name: "corp", type: "ldap", allowAuthFallback: true },
      acceptedDomains: ["example.com"],
    });
    expect((body.hostAccessTable as { name: string }[]).map((group) => group.name)).toEqual([
      "BLOCKLIST",
      "RELAYLIST",
      "ALL",
    ]);
    expect(Object.keys(body.mailFlowPolicies as object).sort()).toEqual(["ACCEPTED", "BLOCKED", "RELAYED"]);
    expect((body.mailFlowPolicies as Record<string, unknown>).ACCEPTED).toEqual({
      behaviour: "accept",
      tls: "preferred",
      verifyClientCertificate: false,
      smtpAuth: "off",
      requireTlsToOfferAuth: true,
      senderLogin: "off",
      maxMessageBytes: 10 * 1024 * 1024,
      maxRecipients: 100,
      maxConnectionsPerClient: 20,
    });
  });

  it("answers 304 to a matching If-None-Match, so relays refresh cheaply", async () => {
    const first = await get("/v1/listeners/submission");
    const etag = first.headers.get("etag");
    expect(etag).toMatch(/^"[0-9a-f]{32}"$/);
    expect(first.headers.get("cache-control")).toBe("no-cache");
    const again = await get("/v1/listeners/submission", { "If-None-Match": etag as string });
    expect(again.status).toBe(304);
    expect((await get("/v1/listeners/submission", { "If-None-Match": '"other"' })).status).toBe(200);
    // RFC 9110: a list of tags, weak comparison and "*" all match.
    expect((await get("/v1/listeners/submission", { "If-None-Match": `"other", W/${etag as string}` })).status).toBe(
      304,
    );
    expect((await get("/v1/listeners/submission", { "If-None-Match": "*" })).status).toBe(304);
  });

  it("answers 404 problem+json for an unknown listener, and 401 without a token", async () => {
    const missing = await get("/v1/listeners/nope");
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toBe("application/problem+json");
    expect((await fetch(`${api.url}/v1/listeners/submission`)).status).toBe(401);
  });
});
