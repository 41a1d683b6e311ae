import { execFile } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it, vi } from "vitest";
import { createJsonLineLogger, writeToStdout } from "./json-lines.ts";

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

describe("standard output, one write per event-loop turn", () => {
  it("holds the lines logged in one turn and writes them together on the next", async () => {
    const write = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
    try {
      const log = createJsonLineLogger(writeToStdout);
      log({ msg: "one" });
      log({ msg: "two" });
      expect(write).not.toHaveBeenCalled();
      await new Promise((resolve) => setImmediate(resolve));
      expect(write).toHaveBeenCalledTimes(1);
      const lines = String(write.mock.calls[0]?.[0]).split("\n");
      expect(lines.map((line) => (line ? JSON.parse(line).msg : line))).toEqual(["one", "two", ""]);
    } finally {
      write.mockRestore();
    }
  });

  // A child process of its own: each way out must leave the line logged just before it on stdout.
  const MODULE = JSON.stringify(pathToFileURL(join(import.meta.dirname, "json-lines.ts")).href);
  const STOP = JSON.stringify(pathToFileURL(join(import.meta.dirname, "node", "graceful-stop.ts")).href);
  const run = (body: string, signal?: NodeJS.Signals) =>
    new Promise<{ stdout: string; code: number | null }>((resolve) => {
      const script = `import { createJsonLineLogger, writeToStdout } from ${MODULE};
        import { stopOnSignals } from ${STOP};
        const log = createJsonLineLogger(writeToStdout);
        ${body}`;
      const child = execFile(process.execPath, ["--input-type=module", "-e", script], (_, stdout) =>
        resolve({ stdout, code: child.exitCode }),
      );
      if (signal) child.stdout?.once("data", () => child.kill(signal));
    });

  it("writes a line logged just before process.exit", async () => {
    const { stdout, code } = await run(`log({ msg: "last words" }); process.exit(3);`);
    expect(code).toBe(3);
    expect(stdout).toContain('"msg":"last words"');
  });

  it("writes a line logged just before an uncaught exception kills the process", async () => {
    const { stdout, code } = await run(`log({ msg: "before the crash" }); throw new Error("boom");`);
    expect(code).toBe(1);
    expect(stdout).toContain('"msg":"before the crash"');
  });

  it("writes the graceful stop's line before it exits", async () => {
    const { stdout, code } = await run(
      `stopOnSignals(async () => {}, (signal) => log({ msg: "stopping", signal }));
       process.stdout.write("ready\\n");
       setInterval(() => {}, 1000);`,
      "SIGTERM",
    );
    expect(code).toBe(0);
    expect(stdout).toContain('"msg":"stopping","signal":"SIGTERM"');
  });
});
