// A tiny HTTP server for CRLs (the URLs in a CRL distribution point): serves DER bodies with
// `Content-Type: application/pkix-crl`, a strong ETag (sha256 of the body) and Last-Modified, answers 304 to a
// matching If-None-Match (or, without one, to an If-Modified-Since not older than Last-Modified), 404 to unknown
// paths and 500 to paths switched to failing with fail(). Listens on 127.0.0.1:<random port>; every request is
// logged in `requests`.
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";

export type CrlBody = Uint8Array | (() => Uint8Array);

export interface CrlRequest {
  method: string;
  path: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  status: number;
}

export interface CrlServer {
  /** http://127.0.0.1:PORT (no trailing slash): a distribution point is `${baseUrl}/intermediate.crl`. */
  baseUrl: string;
  /** Every request so far, oldest first (clear with `requests.length = 0`). */
  requests: CrlRequest[];
  /** Adds or replaces the body of `path` (e.g. "/intermediate.crl"). Last-Modified moves when the bytes change. */
  set(path: string, body: CrlBody): void;
  /** Removes `path`: it answers 404 again. */
  remove(path: string): void;
  /** While `failing`, `path` answers 500 (whether or not it has a body). */
  fail(path: string, failing: boolean): void;
  /** Requests for `path` so far. */
  hits(path: string): CrlRequest[];
  close(): Promise<void>;
}

interface Served {
  body: CrlBody;
  etag?: string;
  lastModified?: Date;
}

function sha256(body: Uint8Array): string {
  return createHash("sha256").update(body).digest("hex");
}

/** Whether an If-None-Match header value matches the ETag (weak comparison, "*" and lists allowed). */
function etagMatches(header: string, etag: string): boolean {
  const bare = (t: string): string => t.trim().replace(/^W\//, "");
  return header.split(",").some((t) => t.trim() === "*" || bare(t) === bare(etag));
}

/** Starts the server with `files` (path → DER body or a function returning one, read at each request). */
export async function serveCrls(files: Record<string, CrlBody> = {}): Promise<CrlServer> {
  const served = new Map<string, Served>();
  const failing = new Set<string>();
  const requests: CrlRequest[] = [];

  const set = (path: string, body: CrlBody): void => {
    served.set(path, { body });
  };
  for (const [path, body] of Object.entries(files)) set(path, body);

  /** Current body, ETag and Last-Modified; Last-Modified (whole seconds) moves only when the bytes change. */
  const current = (entry: Served): { body: Uint8Array; etag: string; lastModified: Date } => {
    const body = typeof entry.body === "function" ? entry.body() : entry.body;
    const etag = `"${sha256(body)}"`;
    if (entry.etag !== etag || !entry.lastModified) {
      entry.etag = etag;
      entry.lastModified = new Date(Math.floor(Date.now() / 1000) * 1000);
    }
    return { body, etag, lastModified: entry.lastModified };
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    const method = req.method ?? "GET";
    const header = (name: string): string | undefined => {
      const v = req.headers[name];
      return Array.isArray(v) ? v.join(", ") : v;
    };
    const ifNoneMatch = header("if-none-match");
    const ifModifiedSince = header("if-modified-since");
    const answer = (status: number, headers: Record<string, string | number> = {}, body?: Uint8Array): void => {
      requests.push({
        method,
        path,
        ...(ifNoneMatch === undefined ? {} : { ifNoneMatch }),
        ...(ifModifiedSince === undefined ? {} : { ifModifiedSince }),
        status,
      });
      res.writeHead(status, headers);
      res.end(body && method !== "HEAD" ? body : undefined);
    };

    if (method !== "GET" && method !== "HEAD") return answer(405, { Allow: "GET, HEAD", "Content-Length": 0 });
    if (failing.has(path)) {
      return answer(500, { "Content-Type": "text/plain" }, new TextEncoder().encode("injected failure\n"));
    }
    const entry = served.get(path);
    if (!entry) return answer(404, { "Content-Type": "text/plain" }, new TextEncoder().encode("not found\n"));

    const { body, etag, lastModified } = current(entry);
    const validators = {
      ETag: etag,
      "Last-Modified": lastModified.toUTCString(),
      "Cache-Control": "no-cache",
    };
    let notModified = false;
    if (ifNoneMatch !== undefined) {
      notModified = etagMatches(ifNoneMatch, etag);
    } else if (ifModifiedSince !== undefined) {
      const since = Date.parse(ifModifiedSince);
      notModified = !Number.isNaN(since) && lastModified.getTime() <= since;
    }
    if (notModified) return answer(304, validators);
    answer(200, { ...validators, "Content-Type": "application/pkix-crl", "Content-Length": body.byteLength }, body);
  };

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error(`serveCrls: odd address ${String(address)}`);

  let closing: Promise<void> | undefined;
  return {
    baseUrl: `http://127.0.0.1:${address.port}`,
    requests,
    set,
    remove: (path) => {
      served.delete(path);
    },
    fail: (path, on) => {
      if (on) failing.add(path);
      else failing.delete(path);
    },
    hits: (path) => requests.filter((r) => r.path === path),
    close: () => {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
