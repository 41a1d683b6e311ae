/**
 * The Node server's app, swappable while it serves (SIGHUP reload) and drained when it stops (SIGTERM).
 *
 * - A generation is one configuration built into an app (gate, directories, CRL store, tokens). A reload swaps in
 *   the next generation; requests already inside the old one finish there, and the old generation is closed
 *   (its LDAP connections and timers) once the last of them has its answer.
 * - Stopping: no new connections, idle keep-alive connections closed, requests in flight given `graceMs` to get
 *   their answers, then every connection cut.
 *
 *   const live = new LiveApp(first);
 *   serve({ fetch: live.fetch, ... });
 *   live.swap(next);                      // reload
 *   await drainHttpServer(server, requests, 10_000); await live.close();
 */
import type { Server } from "node:http";

export interface AppGeneration {
  /** Hono's `app.fetch`; `env` carries @hono/node-server's bindings (the raw request and response). */
  app: { fetch: (request: Request, env?: object) => Response | Promise<Response> };
  close(): Promise<void>;
}

interface Slot<G> {
  generation: G;
  inFlight: number;
  retired: boolean;
  closing?: Promise<void>;
}

export class LiveApp<G extends AppGeneration> {
  #current: Slot<G>;
  readonly #closing = new Set<Promise<void>>();

  constructor(first: G) {
    this.#current = { generation: first, inFlight: 0, retired: false };
  }

  get current(): G {
    return this.#current.generation;
  }

  /** The fetch handler to serve: each request runs to its end on the generation it started on. */
  readonly fetch = async (request: Request, env?: object): Promise<Response> => {
    const slot = this.#current;
    slot.inFlight += 1;
    try {
      return await slot.generation.app.fetch(request, env);
    } finally {
      slot.inFlight -= 1;
      if (slot.retired && slot.inFlight === 0) this.#retire(slot);
    }
  };

  /** Serves `next` from now on; the previous generation closes when its last request is answered. */
  swap(next: G): void {
    const previous = this.#current;
    this.#current = { generation: next, inFlight: 0, retired: false };
    previous.retired = true;
    if (previous.inFlight === 0) this.#retire(previous);
  }

  /** Closes the current generation and waits for retired ones still closing. */
  async close(): Promise<void> {
    this.#retire(this.#current);
    await Promise.all(this.#closing);
  }

  #retire(slot: Slot<G>): void {
    if (slot.closing) return;
    const closing = slot.generation.close().catch(() => {});
    slot.closing = closing;
    this.#closing.add(closing);
    void closing.finally(() => this.#closing.delete(closing));
  }
}

/** Counts the HTTP requests whose response has not finished (or been cut) yet. */
export function countRequestsInFlight(server: Server): () => number {
  let inFlight = 0;
  server.on("request", function countRequest(_request, response) {
    inFlight += 1;
    response.once("close", () => {
      inFlight -= 1;
    });
  });
  return () => inFlight;
}

const DRAIN_POLL_MS = 20;

/**
 * Stops accepting connections, lets the requests in flight finish within `graceMs` (closing connections as they
 * fall idle, so a keep-alive client cannot hold the stop open), then cuts whatever is left.
 */
export async function drainHttpServer(server: Server, inFlight: () => number, graceMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const deadline = Date.now() + graceMs;
  server.closeIdleConnections();
  while (inFlight() > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    server.closeIdleConnections();
  }
  server.closeAllConnections();
  await closed;
}
