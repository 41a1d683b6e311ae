/**
 * Secrets in a configuration are never written inline: a secret is `{ env: "NAME" }`, read from the environment
 * (on Workers, a Workers secret of that name) at start-up. A string given instead is refused with that advice,
 * and its value is never repeated in the message.
 */
import { z } from "zod";
import { markSecret } from "../validation/problems.ts";
import { ConfigError } from "./config-error.ts";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A reference to a secret held in an environment variable (or a Workers secret of that name). */
export const secretRef = markSecret(
  z
    .strictObject({ env: z.string().regex(ENV_NAME, "not an environment variable name") })
    .describe("A secret, read from the environment variable `env` at start-up. Never inline."),
);

export type SecretRef = z.output<typeof secretRef>;

export type Environment = Readonly<Record<string, string | undefined>>;

/** How a missing secret is explained; the Workers runtime says how to set a Workers secret instead. */
export type UnsetSecretMessage = (name: string) => string;

export const unsetEnvironmentVariable: UnsetSecretMessage = (name) => `environment variable ${name} is not set`;

/** The value of one secret reference, or undefined when the variable is missing or empty. */
export function readSecret(ref: SecretRef, env: Environment): string | undefined {
  const value = env[ref.env];
  return value === undefined || value === "" ? undefined : value;
}

/** Resolves one secret reference; a missing or empty variable is a ConfigError naming `path`. */
export function resolveSecretRef(
  ref: SecretRef,
  env: Environment,
  path: string,
  source: string,
  unset: UnsetSecretMessage = unsetEnvironmentVariable,
): string {
  const value = readSecret(ref, env);
  if (value === undefined) throw new ConfigError(source, [{ path, message: unset(ref.env) }]);
  return value;
}
