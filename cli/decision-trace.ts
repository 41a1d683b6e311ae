/**
 * A decision that shows its work, for `smtpgate test-auth` and `test-cert`: the real gate over the real directory
 * adapters, with two observers and no state of its own:
 *
 * - a tracing decorator around each directory (the Directory port) records every search and user bind: the request
 *   as the core made it (filter after token substitution, base, scope), which host answered and how fast (the
 *   adapter's onHostAttempt hook), and the answer;
 * - a certificate observer records the path validation and each revocation check with the CRL that answered.
 *
 * The gate is built with every decision cache off, and called directly (not through the decision service), so a
 * trial decision reads no cache, fills none, and moves no metric.
 */
import { ConfigError, type ConfigProblem } from "../lib/config/config-error.ts";
import { resolveSecretRef } from "../lib/config/secret-ref.ts";
import type { Config } from "../api/config/schema.ts";
import type { CertificateObserver } from "../api/core/certificate-auth.ts";
import type { BindOutcome, Directory, DirectoryEntry, DirectoryResult, SearchRequest } from "../api/core/directory.ts";
import { Gate } from "../api/gate/gate.ts";
import type { HostAttempt } from "../api/ldap/ldap-directory.ts";
import type { CrlStore, RevocationStatus } from "../api/pki/crl-store.ts";
import type { PathResult } from "../api/pki/path-validation.ts";
import type { X509Certificate } from "../api/pki/x509.ts";
import { createDirectories, loadCrlStore, loadIntermediates, loadTrustAnchors } from "../api/runtime/node/loaders.ts";
import { readConfigFile } from "../api/runtime/node/server.ts";
import { timed, UsageError } from "./command.ts";

export type TraceStep =
  | {
      kind: "search";
      directory: string;
      request: SearchRequest;
      ms: number;
      hosts: HostAttempt[];
      result: DirectoryResult<DirectoryEntry[]>;
    }
  | {
      kind: "bind";
      directory: string;
      dn: string;
      ms: number;
      hosts: HostAttempt[];
      result: DirectoryResult<BindOutcome>;
    }
  | { kind: "path"; result: PathResult }
  | { kind: "revocation"; certificate: X509Certificate; issuer: X509Certificate; status: RevocationStatus };

export class DecisionTrace implements CertificateObserver {
  readonly steps: TraceStep[] = [];
  readonly #attempts = new Map<string, HostAttempt[]>();

  /** The adapter's onHostAttempt hook. */
  hostAttempt(directory: string, attempt: HostAttempt): void {
    this.#attempts.get(directory)?.push(attempt);
  }

  /** `inner`, with every search and bind recorded. */
  directory(name: string, inner: Directory): Directory {
    return new TracingDirectory(name, inner, this);
  }

  /** Runs one directory operation, collecting the adapter's host attempts while it runs. */
  async record<T>(
    directory: string,
    operation: () => Promise<T>,
  ): Promise<{ result: T; ms: number; hosts: HostAttempt[] }> {
    const hosts: HostAttempt[] = [];
    this.#attempts.set(directory, hosts);
    try {
      return { ...(await timed(operation)), hosts };
    } finally {
      this.#attempts.delete(directory);
    }
  }

  path(result: PathResult): void {
    this.steps.push({ kind: "path", result });
  }

  revocation(certificate: X509Certificate, issuer: X509Certificate, status: RevocationStatus): void {
    this.steps.push({ kind: "revocation", certificate, issuer, status });
  }
}

/** The tracing decorator of the Directory port. */
class TracingDirectory implements Directory {
  readonly #name: string;
  readonly #inner: Directory;
  readonly #trace: DecisionTrace;

  constructor(name: string, inner: Directory, trace: DecisionTrace) {
    this.#name = name;
    this.#inner = inner;
    this.#trace = trace;
  }

  async search(request: SearchRequest): Promise<DirectoryResult<DirectoryEntry[]>> {
    const done = await this.#trace.record(this.#name, () => this.#inner.search(request));
    this.#trace.steps.push({ kind: "search", directory: this.#name, request, ...done });
    return done.result;
  }

  async bindAsUser(dn: string, password: string): Promise<DirectoryResult<BindOutcome>> {
    const done = await this.#trace.record(this.#name, () => this.#inner.bindAsUser(dn, password));
    this.#trace.steps.push({ kind: "bind", directory: this.#name, dn, ...done });
    return done.result;
  }

  probe(): Promise<DirectoryResult<{ host: string }>> {
    return this.#inner.probe();
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

export interface TracedGate {
  config: Config;
  /** The listener's configuration, or a UsageError naming the ones there are. */
  listener(name: string): Config["listeners"][string];
  gate: Gate;
  trace: DecisionTrace;
  crls: CrlStore | null;
  close(): Promise<void>;
}

/**
 * Everything a decision needs from the configuration at `source`, as `smtpgate api` builds it, but only the
 * directories' secrets (a trial needs no API token), caches off, and a trace.
 */
export async function tracedGate(
  source: string,
  env: Readonly<Record<string, string | undefined>>,
): Promise<TracedGate> {
  const config = withoutCaches(await readConfigFile(source));
  const trace = new DecisionTrace();
  const trustAnchors = await loadTrustAnchors(config, source);
  const intermediates = await loadIntermediates(config, source);
  const crls = await loadCrlStore(config, source, () => {});
  const adapters = await createDirectories(config, bindPasswords(config, env, source), source, (name, attempt) =>
    trace.hostAttempt(name, attempt),
  );
  const directories = Object.fromEntries(
    Object.entries(adapters).map(([name, adapter]) => [name, trace.directory(name, adapter)]),
  );
  const gate = new Gate({ config, directories, trustAnchors, intermediates, crls, certificateObserver: trace });
  return {
    config,
    listener: (name) => {
      const listener = Object.hasOwn(config.listeners, name) ? config.listeners[name] : undefined;
      if (listener) return listener;
      throw new UsageError(
        `--listener: no listener named "${name}" in ${source} (${Object.keys(config.listeners).join(", ")})`,
      );
    },
    gate,
    trace,
    crls,
    close: async () => {
      await Promise.all(Object.values(adapters).map((adapter) => adapter.close()));
    },
  };
}

function withoutCaches(config: Config): Config {
  const off = { positiveTtlSeconds: 0, negativeTtlSeconds: 0, serveStaleSeconds: 0 };
  return {
    ...config,
    authProfiles: Object.fromEntries(
      Object.entries(config.authProfiles).map(([name, profile]) => [
        name,
        { ...profile, cache: { ...profile.cache, ...off } },
      ]),
    ),
  };
}

/** The service binds' passwords, every missing one named at once. */
function bindPasswords(
  config: Config,
  env: Readonly<Record<string, string | undefined>>,
  source: string,
): Record<string, string> {
  const passwords: Record<string, string> = {};
  const problems: ConfigProblem[] = [];
  for (const [name, directory] of Object.entries(config.directories)) {
    if (!directory.bind) continue;
    try {
      passwords[name] = resolveSecretRef(directory.bind.password, env, `directories.${name}.bind.password`, source);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(...error.problems);
    }
  }
  if (problems.length > 0) throw new ConfigError(source, problems);
  return passwords;
}
