// Lint rules: typescript-eslint's recommended set, plus the few rules that catch real mistakes in async
// server code (floating promises swallow directory errors, and a swallowed directory error is an accept).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

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
);
