// The documentation generator (scripts/docs.ts): the configuration reference walks the schemas, the metrics page
// the registries, and the link check finds what points nowhere.
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { configSchema } from "../../api/config/schema.ts";
import { configReferenceMarkdown, inputJsonSchema, sections, typeText } from "../../scripts/docs/config-reference.ts";
import { missingEmbeddings } from "../../scripts/docs/embedded-files.ts";
import { anchorsOf, brokenLinks, githubSlug, linksOf } from "../../scripts/docs/link-check.ts";
import { apiMetricDescriptions, relayMetricDescriptions } from "../../scripts/docs/metrics-reference.ts";

describe("configuration reference", () => {
  it("documents a key added to a schema, with its type, default and description", () => {
    const extended = configSchema.safeExtend({
      newSection: z.strictObject({
        retries: z.number().int().min(1).max(9).default(3).describe("how often to try again"),
      }),
    });
    const section = sections(inputJsonSchema(extended), "smtpgate.yaml").find((s) => s.title === "`newSection`");
    expect(section?.rows).toEqual([
      { key: "retries", type: "integer 1–9", default: "`3`", meaning: "how often to try again" },
    ]);
  });

  it("gives maps of named objects, unions by type, nested objects and lists of objects their own rows", () => {
    const titles = sections(inputJsonSchema(configSchema), "smtpgate.yaml").map((section) => section.title);
    expect(titles).toContain("`directories.<name>`");
    expect(titles).toContain("`authProfiles.<name>` with `type: certificate`");
    const markdown = configReferenceMarkdown();
    expect(markdown).toContain("| `bind.password` | `{ env: string }` | required |");
    expect(markdown).toContain("| `hostAccessTable[].policy` | name | required |");
    expect(markdown).toContain("| `revocation.whenUnknown` | `deny`, `tempfail`, `allow` | `deny` |");
  });

  it("writes unions of formatted strings and enums briefly", () => {
    expect(typeText(inputJsonSchema(z.union([z.ipv4(), z.cidrv4()])))).toBe("string (ipv4, cidrv4)");
    expect(typeText(inputJsonSchema(z.enum(["a", "b"])))).toBe("`a`, `b`");
    expect(typeText(inputJsonSchema(z.array(z.string()).min(1).max(4)))).toBe("list (1–4 entries) of string");
  });
});

describe("metrics reference", () => {
  it("lists every metric the API and the relay register, with type and labels", () => {
    const api = apiMetricDescriptions();
    expect(api.find((metric) => metric.name === "smtpgate_decisions_total")).toMatchObject({
      type: "counter",
      labels: ["kind", "verdict", "reason", "method", "profile"],
    });
    expect(api.find((metric) => metric.name === "smtpgate_decision_duration_seconds")?.type).toBe("histogram");
    const relay = relayMetricDescriptions();
    expect(relay.find((metric) => metric.name === "smtpgate_relay_sessions_active")).toMatchObject({
      type: "gauge",
      labels: [],
    });
    expect(new Set([...api, ...relay].map((metric) => metric.name)).size).toBe(api.length + relay.length);
  });
});

describe("link check", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "smtpgate-links-"));
    await mkdir(join(root, "docs"));
    await writeFile(
      join(root, "README.md"),
      [
        "# Title",
        "[ok](docs/page.md#the-api-mailflowpoliciesname) [ok too](#title) [web](https://example.com/nowhere)",
        "[missing file](docs/nothing.md) [missing anchor](docs/page.md#nowhere)",
        "```",
        "[in a code block](nothing.md)",
        "```",
        "`[inline code](nothing.md)` [no exceptions](docs/ARCHITECTURE.md)",
        "[ref]: docs/gone.md",
      ].join("\n"),
    );
    await writeFile(join(root, "docs", "page.md"), "## The API: `mailFlowPolicies.<name>`\n");
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it("reports a missing file, a missing anchor and a dead reference definition, by file and line", async () => {
    expect(await brokenLinks(root)).toEqual([
      "README.md:3: docs/nothing.md: no such file docs/nothing.md",
      "README.md:3: docs/page.md#nowhere: docs/page.md has no heading with the anchor #nowhere",
      "README.md:7: docs/ARCHITECTURE.md: no such file docs/ARCHITECTURE.md",
      "README.md:8: docs/gone.md: no such file docs/gone.md",
    ]);
  });

  it("makes GitHub's anchors: punctuation dropped, spaces to hyphens, repeats numbered", () => {
    expect(githubSlug("GET /v1/listeners/{name}")).toBe("get-v1listenersname");
    expect(githubSlug("The API's configuration (smtpgate.yaml)")).toBe("the-apis-configuration-smtpgateyaml");
    expect([...anchorsOf("# A\n## A\n```\n# B\n```\n")]).toEqual(["a", "a-1"]);
  });

  it("ignores links with a scheme and links inside code", () => {
    expect(linksOf("[a](https://x) `[b](c.md)` [d](e.md)")).toEqual([{ target: "e.md", line: 1 }]);
  });
});

describe("files shown byte for byte", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "smtpgate-embedded-"));
    await writeFile(join(root, "mail.conf"), "mail {\n    xclient on;\n}\n");
    await writeFile(join(root, "same.md"), "Intro\n\n```nginx\nmail {\n    xclient on;\n}\n```\n");
    await writeFile(join(root, "edited.md"), "Intro\n\n```nginx\nmail {\n    xclient off;\n}\n```\n");
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it("accepts a page with the file as a fenced block and names a page whose copy differs", async () => {
    expect(await missingEmbeddings(root, { "same.md": ["mail.conf"], "edited.md": ["mail.conf"] })).toEqual([
      "edited.md: does not show mail.conf byte for byte in a fenced block (copy the file in again)",
    ]);
  });
});
