// Lint rules: typescript-eslint's recommended set, plus the few rules that catch real mistakes in async
// server code (floating promises swallow directory errors, and a swallowed directory error is an accept), plus
// the dependency rule below.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/**
 * The dependency rule: shells (runtimes, HTTP routes, socket fronts, the relay) point toward the core and the
 * contract, never back. contract/ and lib/ import nothing of ours but lib/ (contract may use lib); api/core is a
 * leaf beside api/pki and api/cache; edge-relay/ and mail-flow/ import only contract/, lib/ and mail-flow/, never
 * api/; fronts/ the same, plus api/decisions in a front's Node composition file (`main.ts`); api/http mounts the
 * fronts that speak HTTP (HTTP_FRONTS). Code the Worker runs
 * (api/core, api/runtime/workers, lib/ outside lib/node) never imports lib/node, which needs Node.js.
 *
 * Each zone lists what it must not import; a file is in exactly one zone (ESLint replaces, not merges, a rule's
 * options when two blocks match). Tests may import anything.
 */
const OUTSIDE_API = ["edge-relay", "mail-flow", "fronts", "test", "dev", "scripts"];
/** api/ layers, inner to outer: core, pki, cache < config < gate < ldap, limiter, metrics, decisions < http < runtime. */
const API_LAYERS = {
  "api/core": ["config", "gate", "ldap", "limiter", "metrics", "decisions", "http", "runtime"],
  "api/pki": ["config", "gate", "ldap", "limiter", "metrics", "decisions", "http", "runtime"],
  "api/cache": ["config", "gate", "ldap", "limiter", "metrics", "decisions", "http", "runtime"],
  "api/config": ["gate", "ldap", "limiter", "metrics", "decisions", "http", "runtime"],
  "api/gate": ["ldap", "limiter", "metrics", "decisions", "http", "runtime"],
  "api/ldap": ["decisions", "http", "runtime"],
  "api/limiter": ["gate", "ldap", "metrics", "decisions", "http", "runtime"],
  "api/metrics": ["decisions", "http", "runtime"],
  "api/decisions": ["http", "runtime"],
  "api/http": ["runtime"],
};
const NODE_ONLY_LIB = {
  regex: "(^|/)lib/node/|^\\.{1,2}/(\\.\\./)*node/",
  message: "lib/node needs Node.js: not here",
};

/**
 * Fronts that speak HTTP are routes of the API's app: api/http may mount them (their pure protocol mapping, which
 * imports only contract/ and lib/), and nothing else of fronts/.
 */
const HTTP_FRONTS = ["nginx-auth"];
const HTTP_FRONTS_ONLY = {
  regex: `^(\\.\\./)+fronts/(?!(${HTTP_FRONTS.join("|")})/)`,
  message: `api/http mounts the HTTP fronts (${HTTP_FRONTS.join(", ")}) and no other front`,
};

/** A relative import that reaches the top-level folder `name` (from any depth). */
const topLevel = (names, why) => ({ regex: `^(\\.\\./)+(${names.join("|")})(/|$)`, message: why });
/** An import of these api/ folders, as a sibling (`../config/`) or through api/ (`../../api/config/`). */
const apiFolders = (names, why) => ({ regex: `^(\\.\\./)+(api/)?(${names.join("|")})/`, message: why });

const ZONES = [
  {
    files: ["contract/**"],
    patterns: [topLevel(["api", ...OUTSIDE_API], "contract/ imports only contract/ and lib/")],
  },
  {
    files: ["lib/**"],
    ignores: ["lib/node/**"],
    patterns: [topLevel(["api", "contract", ...OUTSIDE_API], "lib/ imports nothing of ours"), NODE_ONLY_LIB],
  },
  { files: ["lib/node/**"], patterns: [topLevel(["api", "contract", ...OUTSIDE_API], "lib/ imports nothing of ours")] },
  ...Object.entries(API_LAYERS).map(([zone, outer]) => ({
    files: [`${zone}/**`],
    patterns: [
      apiFolders(outer, `${zone} is inside them: the outer layers import it, never the reverse`),
      ...(zone === "api/http"
        ? [
            topLevel(
              OUTSIDE_API.filter((name) => name !== "fronts"),
              "the API imports no front, test or script",
            ),
            HTTP_FRONTS_ONLY,
          ]
        : [topLevel(OUTSIDE_API, "the API imports no front, test or script")]),
      ...(["api/core", "api/pki", "api/cache"].includes(zone) ? [NODE_ONLY_LIB] : []),
    ],
  })),
  {
    files: ["api/runtime/workers/**"],
    patterns: [topLevel(OUTSIDE_API, "the API imports no front, test or script"), NODE_ONLY_LIB],
  },
  {
    files: ["api/runtime/**"],
    ignores: ["api/runtime/workers/**"],
    patterns: [topLevel(OUTSIDE_API, "the API imports no front, test or script")],
  },
  {
    files: ["edge-relay/**"],
    patterns: [
      topLevel(["api", "fronts", "test", "dev", "scripts"], "the relay imports only contract/, lib/ and mail-flow/"),
    ],
  },
  {
    files: ["mail-flow/**"],
    patterns: [
      topLevel(["api", "edge-relay", "fronts", "test", "dev", "scripts"], "mail-flow/ imports only contract/ and lib/"),
    ],
  },
  {
    files: ["fronts/**"],
    ignores: ["fronts/**/main.ts"],
    patterns: [
      topLevel(["api", "edge-relay", "test", "dev", "scripts"], "a front imports only contract/, lib/ and mail-flow/"),
    ],
  },
  {
    files: ["fronts/**/main.ts"],
    patterns: [
      {
        regex: "^(\\.\\./)+api/(?!decisions/)",
        message: "a front's Node composition may use api/decisions, nothing else of api/",
      },
      topLevel(["edge-relay", "test", "dev", "scripts"], "a front imports only contract/, lib/ and mail-flow/"),
    ],
  },
];

const SOURCES = ["api", "lib", "contract", "edge-relay", "mail-flow", "fronts", "scripts"].map(
  (dir) => `${dir}/**/*.ts`,
);

export default tseslint.config(
  { ignores: ["node_modules/", ".toolchain/", "dist/", ".wrangler/", "coverage/", ".demo/", ".scratch/"] },
  js.configs.recommended,
  {
    // The package's bin shim: plain JavaScript for Node.js (it must parse on old versions to tell them apart).
    files: ["bin/*.js"],
    languageOptions: { globals: { process: "readonly", URL: "readonly" } },
  },
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      eqeqeq: ["error", "always"],
    },
  },
  ...ZONES.map(({ files, ignores = [], patterns }) => ({
    files,
    ignores: [...ignores, "**/*.test.ts"],
    rules: { "no-restricted-imports": ["error", { patterns }] },
  })),
  // Past 400 lines a module usually holds more than one job; a warning, so that splitting is a choice.
  { files: SOURCES, ignores: ["**/*.test.ts"], rules: { "max-lines": ["warn", { max: 400 }] } },
);
