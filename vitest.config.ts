import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: [
      "api/**/*.test.ts",
      "lib/**/*.test.ts",
      "mail-flow/**/*.test.ts",
      "fronts/**/*.test.ts",
      "dev/**/*.test.ts",
      "test/**/*.test.ts",
    ],
    // Those run inside workerd: vitest.workers.config.ts (npm run test:workers).
    exclude: [...configDefaults.exclude, "test/workers/**"],
    // Integration tests start their own slapd processes; forks keep each file's children isolated.
    pool: "forks",
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});
