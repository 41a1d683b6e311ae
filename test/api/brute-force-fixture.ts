// What the brute-force tests share: a configuration over a slapd (an uncached, a cached and an observed listener)
// and one AUTH attempt from a given address.
import type { ConfigInput } from "../../api/config/schema.ts";
import { API_TOKENS_CONFIG, slapdDirectory, type TestApi } from "../../dev/api.ts";
import type { SlapdInstance } from "../../dev/slapd/index.ts";

export function bruteForceConfig(slapd: SlapdInstance, extra: Partial<ConfigInput> = {}): ConfigInput {
  return {
    directories: { corp: slapdDirectory(slapd) },
    smtpAuthQueries: { corp: { directory: "corp" } },
    authProfiles: {
      corp: { type: "ldap", query: "corp" },
      cached: { type: "ldap", query: "corp", cache: { positiveTtlSeconds: 300, negativeTtlSeconds: 0 } },
    },
    listeners: {
      submission: { authProfile: "corp" },
      cached: { authProfile: "cached" },
      observed: { authProfile: "corp", bruteForce: { mode: "observe" } },
    },
    api: { ...API_TOKENS_CONFIG, metricsTokens: [{ env: "METRICS_TOKEN" }] },
    ...extra,
  };
}

/** POST /v1/decide/auth from `ip`. */
export async function attempt(
  api: TestApi,
  fields: { ip: string; username: string; password: string; listener?: string },
): Promise<Record<string, unknown>> {
  const response = await api.post("/v1/decide/auth", {
    listener: fields.listener ?? "submission",
    client: { ip: fields.ip },
    mechanism: "PLAIN",
    username: fields.username,
    password: fields.password,
  });
  if (response.status !== 200) throw new Error(`decide/auth: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body;
}
