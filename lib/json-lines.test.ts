import { describe, expect, it } from "vitest";
import { createJsonLineLogger } from "./json-lines.ts";

describe("JSON-lines logging", () => {
  it("writes one JSON object a line: the time first, then the logger's fields, then the record", () => {
    const lines: { line: string; level: unknown }[] = [];
    const log = createJsonLineLogger((line, level) => lines.push({ line, level }), { component: "edge-relay" });
    log({ level: "warn", msg: "policy refresh failed", listener: "submission" });
    expect(lines).toHaveLength(1);
    const [{ line, level }] = lines as [{ line: string; level: unknown }];
    expect(level).toBe("warn");
    expect(line).not.toContain("\n");
    expect(Object.keys(JSON.parse(line))).toEqual(["time", "component", "level", "msg", "listener"]);
    expect(JSON.parse(line)).toMatchObject({ component: "edge-relay", msg: "policy refresh failed" });
    expect(new Date(JSON.parse(line).time).getTime()).toBeGreaterThan(Date.now() - 60_000);
  });
});
