import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../lib/config/config-error.ts";
import { parseConfig, resolveSecrets } from "./load.ts";
import { configJsonSchema } from "./schema.ts";

const EXAMPLE = new URL("../../infra/config/flow-b.yaml", import.meta.url);
const SCHEMA_FILE = new URL("../../infra/config/smtpgate.schema.json", import.meta.url);

function minimal(): Record<string, unknown> {
  return {
    directories: { corp: { hosts: ["ldaps://ldap.example.com"], baseDn: "dc=example,dc=com" } },
    smtpAuthQueries: { q: { directory: "corp" } },
    authProfiles: { corp: { type: "ldap", query: "q" } },
    listeners: { submission: { authProfile: "corp" } },
    api: { tokens: [{ env: "TOKEN" }] },
  };
}

function problemsOf(document: unknown): string[] {
  try {
    parseConfig(JSON.stringify(document), "test.json");
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((problem) => `${problem.path}: ${problem.message}`);
    throw error;
  }
  return [];
}

describe("configuration", () => {
  it("accepts the documented flow B example and fills defaults", async () => {
    const config = parseConfig(await readFile(EXAMPLE, "utf8"), "flow-b.yaml");
    expect(config.directories.corp?.hosts).toHaveLength(2);
    expect(config.smtpAuthQueries["corp-auth"]?.method).toBe("bind");
    expect(config.listeners.submission?.onAllowanceFailure).toBe("reject");
    expect(config.directories.corp?.startTls).toBe(true);
  });

  it.each(["flow-a.yaml", "flow-c.yaml"])("accepts the documented example %s", async (file) => {
    const config = parseConfig(await readFile(new URL(`../../infra/config/${file}`, import.meta.url), "utf8"), file);
    expect(Object.values(config.authProfiles).some((profile) => profile.type === "certificate")).toBe(true);
    // An edge relay refuses to start for a listener without sender groups.
    for (const listener of Object.values(config.listeners)) expect(listener.hostAccessTable.length).toBeGreaterThan(0);
  });

  it("fills safe defaults: failover, StartTLS, seconds-long timeouts, the uid filter", () => {
    const config = parseConfig(JSON.stringify(minimal()), "x");
    expect(config.directories.corp).toMatchObject({
      mode: "failover",
      startTls: true,
      allowPlaintext: false,
      connectTimeoutMs: 3000,
      operationTimeoutMs: 3000,
    });
    expect(config.smtpAuthQueries.q).toMatchObject({
      filter: "(uid={u})",
      method: "bind",
      allowPlaintextPasswords: false,
    });
  });

  it("names the path and the reason of a bad host URL", () => {
    const document = minimal();
    (document.directories as { corp: { hosts: string[] } }).corp.hosts = [
      "ldaps://ok.example.com",
      "http://ldap.example.com",
    ];
    expect(problemsOf(document)).toEqual([
      "directories.corp.hosts[1]: not an ldap:// or ldaps:// URL (scheme, host and optional port only)",
    ]);
  });

  it("reports every problem at once", () => {
    const document = minimal();
    (document.smtpAuthQueries as Record<string, unknown>).q = { directory: "nope", filter: "(uid={user})" };
    (document.listeners as Record<string, unknown>).submission = {
      authProfile: "corp",
      onAllowanceFailure: "maybe",
      extra: 1,
    };
    const problems = problemsOf(document);
    expect(problems).toContain("smtpAuthQueries.q.filter: unknown token {user} (allowed: {u} {a} {d} {t})");
    expect(problems).toContain('listeners.submission: unknown key "extra"');
    expect(problems.some((p) => p.startsWith("listeners.submission.onAllowanceFailure: "))).toBe(true);
  });

  it("checks references between sections", () => {
    const document = minimal();
    (document.smtpAuthQueries as Record<string, unknown>).q = { directory: "nope" };
    expect(problemsOf(document)).toEqual(['smtpAuthQueries.q.directory: no directory named "nope"']);
  });

  it("rejects a filter that does not parse", () => {
    const document = minimal();
    (document.smtpAuthQueries as Record<string, unknown>).q = { directory: "corp", filter: "(uid={u}" };
    expect(problemsOf(document)[0]).toMatch(/^smtpAuthQueries\.q\.filter: not a valid LDAP filter/);
  });

  it("rejects a filter with unbalanced parentheses, which ldapts would silently close", () => {
    const document = minimal();
    (document.smtpAuthQueries as Record<string, unknown>).q = { directory: "corp", filter: "(&(uid={u})" };
    expect(problemsOf(document)).toEqual(["smtpAuthQueries.q.filter: not a valid LDAP filter: unbalanced parentheses"]);
  });

  it("checks a DN template: known tokens, at least one, attribute=value first, and only with method bind", () => {
    const problems = (bindDnTemplate: string, method = "bind") => {
      const document = minimal();
      (document.smtpAuthQueries as Record<string, unknown>).q = { directory: "corp", bindDnTemplate, method };
      return problemsOf(document);
    };
    expect(problems("uid={u},ou=people,dc=example,dc=com")).toEqual([]);
    expect(problems("uid={t},ou=people")).toEqual([
      "smtpAuthQueries.q.bindDnTemplate: unknown token {t} (allowed: {u} {a} {d})",
    ]);
    expect(problems("uid=alice,ou=people")).toEqual([
      "smtpAuthQueries.q.bindDnTemplate: no token: every user would bind as one DN",
    ]);
    expect(problems("{u},ou=people")).toEqual([
      "smtpAuthQueries.q.bindDnTemplate: not a DN: it must start with attribute=value",
    ]);
    expect(problems("uid={u},ou=people", "password-attribute")).toEqual([
      "smtpAuthQueries.q.bindDnTemplate: needs method: bind (a DN template is where the user binds)",
    ]);
  });

  it("tells a value of the wrong type from a missing one", () => {
    const document = minimal();
    (document.api as Record<string, unknown>).listen = { port: "8787" };
    expect(problemsOf(document)).toEqual(['api.listen.port: expected a number, found the string "8787"']);
    delete (document.directories as { corp: Record<string, unknown> }).corp.baseDn;
    expect(problemsOf(document)).toContain("directories.corp.baseDn: missing (expected a string)");
  });

  it("checks host access tables: CIDR syntax and policy references", () => {
    const document = minimal();
    (document as Record<string, unknown>).mailFlowPolicies = {
      RELAYED: { behaviour: "relay", verifyClientCertificate: true, tls: "off" },
    };
    (document.listeners as Record<string, unknown>).submission = {
      authProfile: "corp",
      hostAccessTable: [
        { name: "BAD", match: ["10.0.0.0/33"], policy: "RELAYED" },
        { name: "X", match: ["10.0.0.0/8"], policy: "MISSING" },
      ],
    };
    expect(problemsOf(document)).toEqual([
      "listeners.submission.hostAccessTable[0].match[0]: not an IP address or CIDR block",
    ]);
    (document.listeners as { submission: { hostAccessTable: unknown[] } }).submission.hostAccessTable.shift();
    expect(problemsOf(document)).toEqual([
      'listeners.submission.hostAccessTable[0].policy: no mailFlowPolicies entry named "MISSING"',
      "mailFlowPolicies.RELAYED.verifyClientCertificate: a client certificate needs TLS: set tls to preferred or required",
    ]);
  });

  it("refuses ldap:// without StartTLS unless plaintext is explicitly allowed", () => {
    const document = minimal();
    (document.directories as Record<string, unknown>).corp = {
      hosts: ["ldap://ldap.example.com"],
      baseDn: "dc=x",
      startTls: false,
    };
    expect(problemsOf(document)[0]).toMatch(/^directories\.corp\.hosts\[0\]: ldap:\/\/ without StartTLS/);
  });

  it("refuses secrets written inline, says how to give them, and never repeats them", () => {
    const document = minimal();
    (document.api as Record<string, unknown>).tokens = ["demo-token"];
    (document.directories as { corp: Record<string, unknown> }).corp.bind = { dn: "cn=svc", password: "hunter2" };
    const problems = problemsOf(document);
    expect(problems).toEqual([
      expect.stringMatching(
        /^directories\.corp\.bind\.password: a secret is never written inline: .* \{ env: "NAME" \}/,
      ),
      expect.stringMatching(/^api\.tokens\[0\]: a secret is never written inline: .* \{ env: "NAME" \}/),
    ]);
    expect(problems.join("\n")).not.toMatch(/hunter2|demo-token/);
    (document.api as Record<string, unknown>).tokens = [["demo-token"]];
    expect(problemsOf(document)).toContain(
      'api.tokens[0]: expected { env: "NAME" } (a secret read from the environment), found a list',
    );
  });

  it("reports a YAML syntax error with the line it is on, and a missing section", () => {
    expect(() => parseConfig("directories: [", "bad.yaml")).toThrow(
      /bad.yaml: invalid configuration\n {2}not valid YAML or JSON/,
    );
    const text = ["api:", "  tokens: [{ env: TOKEN }]", "  listen: { host: 127.0.0.1, port: 8787", "directories: {}"];
    expect(() => parseConfig(text.join("\n"), "bad.yaml")).toThrow(
      /at line 4, column 1:\n\n {6}listen: \{ host: 127\.0\.0\.1, port: 8787\n {4}directories: \{\}\n {4}\^$/,
    );
    expect(() => parseConfig("- a\n- b\n", "list.yaml")).toThrow(
      "list.yaml: invalid configuration\n  expected a mapping with directories, authProfiles, listeners and api, found a list",
    );
    const document = minimal();
    delete document.listeners;
    expect(problemsOf(document)).toEqual(["listeners: missing (expected a mapping)"]);
  });

  it("resolves secrets from the environment and names what is missing", () => {
    const document = minimal();
    (document.directories as { corp: Record<string, unknown> }).corp.bind = {
      dn: "cn=svc",
      password: { env: "BIND_PW" },
    };
    const config = parseConfig(JSON.stringify(document), "x");
    expect(resolveSecrets(config, { TOKEN: "t0ken", BIND_PW: "pw" }, "x")).toEqual({
      apiTokens: ["t0ken"],
      metricsTokens: [],
      bindPasswords: { corp: "pw" },
    });
    expect(() => resolveSecrets(config, { TOKEN: "has spaces!", BIND_PW: "pw" }, "x")).toThrow(
      "api.tokens[0]: the value of TOKEN is not a valid bearer token",
    );
    expect(() => resolveSecrets(config, { TOKEN: "" }, "x")).toThrow(
      "x: invalid configuration\n  api.tokens[0]: environment variable TOKEN is not set\n  directories.corp.bind.password: environment variable BIND_PW is not set",
    );
  });

  it("resolves the metrics-only tokens like the API tokens", () => {
    const document = minimal();
    (document.api as Record<string, unknown>).metricsTokens = [{ env: "SCRAPER" }];
    const config = parseConfig(JSON.stringify(document), "x");
    expect(resolveSecrets(config, { TOKEN: "t0ken", SCRAPER: "scr4per" }, "x")).toMatchObject({
      apiTokens: ["t0ken"],
      metricsTokens: ["scr4per"],
    });
    expect(() => resolveSecrets(config, { TOKEN: "t0ken" }, "x")).toThrow(
      "api.metricsTokens[0]: environment variable SCRAPER is not set",
    );
  });

  it("keeps the decision cache off unless asked, and checks its settings", () => {
    const config = parseConfig(JSON.stringify(minimal()), "x");
    expect(config.authProfiles.corp?.cache).toEqual({
      positiveTtlSeconds: 0,
      negativeTtlSeconds: 0,
      serveStaleSeconds: 0,
      maxEntries: 10_000,
    });
    const document = minimal();
    (document.authProfiles as Record<string, unknown>).corp = {
      type: "ldap",
      query: "q",
      cache: { positiveTtlSeconds: 300, serveStaleSeconds: 60, maxEntries: 0 },
    };
    expect(problemsOf(document)).toEqual([
      "authProfiles.corp.cache.maxEntries: expected at least 1, found the number 0",
      "authProfiles.corp.cache.serveStaleSeconds: must be 0 (off) or longer than positiveTtlSeconds: an allow younger than positiveTtlSeconds is reused anyway",
    ]);
  });

  it("suggests the key, value or type that was probably meant", () => {
    const document = minimal();
    (document.listeners as Record<string, unknown>).submission = { authProfile: "corp", hostAcessTable: [] };
    (document.directories as { corp: Record<string, unknown> }).corp.mode = "failovr";
    (document.authProfiles as Record<string, unknown>).corp = { type: "ldapp", query: "q" };
    expect(problemsOf(document)).toEqual([
      'directories.corp.mode: expected "failover" or "loadbalance", found the string "failovr"; did you mean "failover"?',
      'authProfiles.corp.type: expected "ldap" or "certificate", found the string "ldapp"; did you mean "ldap"?',
      'listeners.submission: unknown key "hostAcessTable"; did you mean "hostAccessTable"?',
    ]);
  });

  it("says a list was expected when a single value is given, and nothing about the value's length", () => {
    const document = minimal();
    (document.directories as { corp: Record<string, unknown> }).corp.hosts =
      "ldaps://a-rather-long-host-name.example.com";
    expect(problemsOf(document)).toEqual([
      'directories.corp.hosts: expected a list, found the string "ldaps://a-rather-long-host-name.example.com"',
    ]);
  });

  it("reports the problem inside the form of a choice that fits (a file or inline PEM)", () => {
    const document = minimal();
    (document as Record<string, unknown>).certificateQueries = { c: { directory: "corp", filter: "(mail={email})" } };
    (document.authProfiles as Record<string, unknown>).cert = {
      type: "certificate",
      query: "c",
      trustAnchors: { file: 1 },
    };
    (document.authProfiles as Record<string, unknown>).cert2 = {
      type: "certificate",
      query: "c",
      trustAnchors: "ca.pem",
    };
    expect(problemsOf(document)).toEqual([
      "authProfiles.cert.trustAnchors.file: expected a string, found the number 1",
      'authProfiles.cert2.trustAnchors: expected { file: … } or { pem: … }, found the string "ca.pem"',
    ]);
  });

  it("uses no validator wording for any problem", () => {
    const document = minimal();
    (document.directories as { corp: Record<string, unknown> }).corp.hosts = [];
    (document.api as Record<string, unknown>).maxBodyBytes = 1.5;
    (document.api as Record<string, unknown>).listen = { port: 70_000 };
    (document.listeners as Record<string, unknown>)["bad name!"] = { authProfile: "corp" };
    const problems = problemsOf(document);
    expect(problems).toEqual([
      "directories.corp.hosts: expected at least 1 item, found an empty list",
      expect.stringMatching(/^listeners\.bad name!: invalid key "bad name!": must be 1-64 letters/),
      "api.listen.port: expected at most 65535, found the number 70000",
      "api.maxBodyBytes: expected an integer, found the number 1.5",
    ]);
    for (const problem of problems) expect(problem).not.toMatch(/Invalid input|Too (big|small)|Unrecognized|>=|<=/);
  });

  it("publishes a JSON Schema that matches the code (regenerate with npm run schema)", async () => {
    const published = JSON.parse(await readFile(SCHEMA_FILE, "utf8"));
    expect(published).toEqual(configJsonSchema());
  });
});
