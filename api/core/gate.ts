/**
 * The gate: from a listener's name to the decision, following the configuration's references
 * (listener → auth profile → SMTP AUTH query → directory). Pure over its inputs: the directories are ports and
 * the clock is given, so the Node and Workers entry points differ only in how they build the directories.
 */
import type { Config } from "../config/schema.ts";
import type { Directory } from "./directory.ts";
import { decideSmtpAuth, type SmtpAuthCredentials, type SmtpAuthQuery } from "./smtp-auth.ts";
import type { Decision } from "./verdict.ts";

export interface AuthRequest extends SmtpAuthCredentials {
  listener: string;
  mechanism: "PLAIN" | "LOGIN";
}

export type GateResult = { ok: true; decision: Decision } | { ok: false; field: string; problem: string };

export interface GateOptions {
  config: Config;
  directories: Readonly<Record<string, Directory>>;
  now?: () => Date;
}

export class Gate {
  readonly #config: Config;
  readonly #directories: Readonly<Record<string, Directory>>;
  readonly #now: () => Date;
  /** Queries with their defaults resolved once, not per decision. */
  readonly #queries: ReadonlyMap<string, SmtpAuthQuery>;

  constructor(options: GateOptions) {
    this.#config = options.config;
    this.#directories = options.directories;
    this.#now = options.now ?? (() => new Date());
    this.#queries = new Map(
      Object.entries(options.config.smtpAuthQueries).map(([name, query]) => {
        const baseDn = query.baseDn ?? (options.config.directories[query.directory]?.baseDn as string);
        const resolved: SmtpAuthQuery = {
          baseDn,
          filter: query.filter,
          method: query.method,
          passwordAttribute: query.passwordAttribute,
          allowPlaintextPasswords: query.allowPlaintextPasswords,
          ...(query.allowance ? { allowance: { filter: query.allowance.filter, baseDn: query.allowance.baseDn ?? baseDn } } : {}),
        };
        return [name, resolved];
      }),
    );
  }

  async decideAuth(request: AuthRequest): Promise<GateResult> {
    const listener = this.#config.listeners[request.listener];
    if (!listener) return { ok: false, field: "listener", problem: `no listener named "${request.listener}"` };
    const profileName = listener.authProfile;
    const profile = this.#config.authProfiles[profileName];
    // The schema guarantees these references; a miss here is a programming error, not a caller's.
    if (!profile) throw new Error(`listener ${request.listener}: auth profile ${profileName} missing`);
    const query = this.#queries.get(profile.query);
    const queryConfig = this.#config.smtpAuthQueries[profile.query];
    const directory = queryConfig && this.#directories[queryConfig.directory];
    if (!query || !directory) throw new Error(`auth profile ${profileName}: query or directory missing`);
    const decision = await decideSmtpAuth(request, {
      profile: profileName,
      query,
      onAllowanceFailure: listener.onAllowanceFailure,
      directory,
      now: this.#now(),
    });
    return { ok: true, decision };
  }

  /** Probes every directory; for /readyz. */
  async readiness(): Promise<{ ready: boolean; directories: Record<string, { ready: boolean; detail: string }> }> {
    const entries = await Promise.all(
      Object.entries(this.#directories).map(async ([name, directory]) => {
        const probe = await directory.probe();
        return [name, probe.ok ? { ready: true, detail: `answered: ${probe.value.host}` } : { ready: false, detail: probe.error.detail }] as const;
      }),
    );
    return { ready: entries.every(([, state]) => state.ready), directories: Object.fromEntries(entries) };
  }
}
