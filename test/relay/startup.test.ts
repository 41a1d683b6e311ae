// The start-up wait's pure parts (edge-relay/startup.ts): the capped exponential backoff, and which failed policy
// loads are configuration errors (exit 2) rather than an API that cannot answer yet (retry). End to end, with the
// relay command and a real API, in failures.test.ts.
import { errors as undiciErrors } from "undici";
import { describe, expect, it } from "vitest";
import { ApiError } from "../../contract/api-client.ts";
import { UnusablePolicyError } from "../../contract/listener-policy-holder.ts";
import { backoffDelay, configurationFix, DEFAULT_STARTUP_BACKOFF } from "../../edge-relay/startup.ts";

describe("backoffDelay", () => {
  it("doubles from the first delay up to the cap, and stays there", () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 8, 20].map((failures) => backoffDelay(failures, DEFAULT_STARTUP_BACKOFF));
    expect(delays).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
  });
});

describe("configurationFix", () => {
  it("names the fix for a refused token, an unknown listener and an unusable policy", () => {
    expect(configurationFix(new ApiError("HTTP 401", 401))).toMatch(/^set api\.token /);
    expect(configurationFix(new ApiError("HTTP 403", 403))).toMatch(/^set api\.token /);
    expect(configurationFix(new ApiError("HTTP 404", 404))).toMatch(/^set listener .* or fix api\.url$/);
    expect(configurationFix(new ApiError("not a listener policy", 200))).toMatch(/^check api\.url/);
    expect(configurationFix(new UnusablePolicyError("empty host access table"))).toMatch(/API's configuration/);
  });

  it("retries what waiting may cure: no answer, 5xx, 408/429, an answer that is not JSON", () => {
    expect(configurationFix(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }))).toBeNull();
    expect(configurationFix(new undiciErrors.HeadersTimeoutError())).toBeNull();
    for (const status of [500, 502, 503, 504, 408, 429]) expect(configurationFix(new ApiError("", status))).toBeNull();
    expect(configurationFix(new ApiError("the answer is not JSON"))).toBeNull();
  });
});
