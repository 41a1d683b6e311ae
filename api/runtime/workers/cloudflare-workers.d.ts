// The part of workerd's "cloudflare:workers" module the Worker uses (the Durable Object base class and its SQLite
// storage), typed without @cloudflare/workers-types, whose globals clash with @types/node in this single-tsconfig
// project.
declare module "cloudflare:workers" {
  export type SqlValue = string | number | ArrayBuffer | null;

  export interface SqlCursor<T> {
    toArray(): T[];
    one(): T;
  }

  export interface DurableObjectStorage {
    sql: { exec<T = Record<string, SqlValue>>(query: string, ...bindings: SqlValue[]): SqlCursor<T> };
    transactionSync<T>(body: () => T): T;
    getAlarm(): Promise<number | null>;
    setAlarm(at: number): Promise<void>;
  }

  export interface DurableObjectState {
    storage: DurableObjectStorage;
  }

  export abstract class DurableObject<Env = unknown> {
    protected ctx: DurableObjectState;
    protected env: Env;
    constructor(ctx: DurableObjectState, env: Env);
  }
}
