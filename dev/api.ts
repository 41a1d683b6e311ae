// Starts the real decision API (Node runtime, real ldapts, real HTTP on loopback) in this process, for a
// test or the demo, with its log lines captured, and a small client for it.
import { validateConfig } from "../api/config/load.ts";
import type { ConfigInput } from "../api/config/schema.ts";
import type { LogRecord } from "../api/http/app.ts";
import { startApiServer, type ApiServer, type StartFronts } from "../api/runtime/node/server.ts";
import { SEED, type SlapdInstance } from "./slapd/index.ts";

export const TEST_TOKEN = "test-token-0123456789";
export const TEST_TOKEN_NEXT = "next-token-9876543210";

export interface TestApi extends ApiServer {
  logs: LogRecord[];
  /** POSTs JSON to `path` with the test token (or `token`, or none with null). */
  post(
    path: string,
    body: unknown,
    token?: string | null,
  ): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }>;
  /** POST /v1/decide/auth with the usual connection facts filled in. */
  decideAuth(fields: {
    listener?: string;
    username: string;
    password: string;
    mechanism?: string;
    authzid?: string;
  }): Promise<Record<string, unknown>>;
}

export async function startTestApi(
  config: ConfigInput,
  env: Record<string, string> = {},
  port = 0,
  options: { startFronts?: StartFronts } = {},
): Promise<TestApi> {
  const logs: LogRecord[] = [];
  const server = await startApiServer({
    config: validateConfig(config, "test config"),
    source: "test config",
    env: { TEST_TOKEN, TEST_TOKEN_NEXT, ...env },
    listen: { host: "127.0.0.1", port },
    log: (record) => logs.push(record),
    ...(options.startFronts ? { startFronts: options.startFronts } : {}),
  });
  // Tests count directory traffic and read log lines: let the start-up probe finish first.
  await server.probed;
  const post: TestApi["post"] = async (path, body, token = TEST_TOKEN) => {
    const headers: Record<string, string> = { "Content-Type": "application/json" };
    if (token !== null) headers.Authorization = `Bearer ${token}`;
    const response = await fetch(`${server.url}${path}`, {
      method: "POST",
      headers,
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
    return {
      status: response.status,
      body: (await response.json()) as Record<string, unknown>,
      headers: response.headers,
    };
  };
  return {
    ...server,
    logs,
    post,
    async decideAuth(fields) {
      const response = await post("/v1/decide/auth", {
        listener: fields.listener ?? "submission",
        session: "test-session",
        client: { ip: "192.0.2.25", helo: "client.example" },
        tls: { version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384" },
        mechanism: fields.mechanism ?? "PLAIN",
        username: fields.username,
        password: fields.password,
        ...(fields.authzid === undefined ? {} : { authzid: fields.authzid }),
      });
      if (response.status !== 200)
        throw new Error(`decide/auth answered ${response.status}: ${JSON.stringify(response.body)}`);
      return response.body;
    },
  };
}

export const API_TOKENS_CONFIG = { tokens: [{ env: "TEST_TOKEN" }, { env: "TEST_TOKEN_NEXT" }] };

/**
 * The LDAP server profile most API tests use: `slapd` over StartTLS with its CA and the seed's service bind
 * (password from BIND_PW), plus `extra` keys.
 */
export function slapdDirectory(slapd: SlapdInstance, extra: Record<string, unknown> = {}) {
  return {
    hosts: [slapd.ldapUrl],
    tls: { caFile: slapd.pki.caFile },
    bind: { dn: SEED.serviceDn, password: { env: "BIND_PW" } },
    baseDn: SEED.baseDn,
    ...extra,
  };
}

/**
 * The configuration the MTA tests of the Dovecot-SASL front run the API with: one listener, `password`, whose users
 * bind to `slapd` and are allowed only in the SMTP users group (bob is not), served by `fronts`.
 */
export function passwordGateConfig(slapd: SlapdInstance, fronts: ConfigInput["fronts"]): ConfigInput {
  return {
    directories: { corp: slapdDirectory(slapd, { connectTimeoutMs: 1_000, operationTimeoutMs: 2_000 }) },
    smtpAuthQueries: {
      corp: {
        directory: "corp",
        filter: "(uid={u})",
        method: "bind",
        allowance: { filter: `(&(uid={u})(memberOf=${SEED.smtpUsersGroupDn}))` },
      },
    },
    authProfiles: { corp: { type: "ldap", query: "corp" } },
    listeners: { password: { authProfile: "corp" } },
    api: { tokens: [{ env: "TEST_TOKEN" }] },
    fronts,
  };
}
