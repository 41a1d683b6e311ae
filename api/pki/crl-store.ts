/**
 * Certificate revocation lists: loaded from files and http(s) URLs, refreshed on a schedule with conditional
 * requests, optionally from the certificate's own CRL distribution points. Runtime-neutral: the caller supplies
 * `fetch` and (on Node) a file reader.
 *
 * A certificate is revoked when a CRL issued by the certificate's issuer (same issuer name, signature verified
 * with the issuer's key from the validated path) lists its serial number: issuer + serial, never serial alone.
 * No such CRL, a bad signature, or a CRL past its nextUpdate (plus the profile's grace) makes the status
 * `unknown`, which the profile turns into deny, tempfail or allow.
 */
import { nameKey, nameKeys } from "./certificate-memo.ts";
import { x509, type X509Certificate, type X509Crl } from "./x509.ts";

export interface CrlSourceOptions {
  name: string;
  url?: string | undefined;
  file?: string | undefined;
  refreshSeconds: number;
}

export interface CrlStoreOptions {
  sources: readonly CrlSourceOptions[];
  fetch?: typeof fetch;
  readFile?: (path: string) => Promise<Uint8Array>;
  now?: () => Date;
  log?: (record: Record<string, unknown>) => void;
  /** Per-request timeout for CRL downloads. */
  fetchTimeoutMs?: number;
  /** Largest CRL accepted, in bytes. */
  maxCrlBytes?: number;
  /** Most distribution-point URLs remembered. */
  maxDistributionPoints?: number;
}

/**
 * `good` says until when the CRL that vouched for the certificate may be relied on (its nextUpdate plus the grace);
 * `source` names the CRL source that answered.
 */
export type RevocationStatus =
  | { status: "good"; usableUntil: Date; source: string }
  | { status: "revoked"; detail: string; source: string }
  | { status: "unknown"; detail: string };

export interface SourceState {
  name: string;
  location: string;
  crl: X509Crl | null;
  /** Identity of the loaded CRL (changes when a new CRL is loaded; decision caches key on it). */
  version: number;
  lastAttempt: Date | null;
  lastSuccess: Date | null;
  error: string | null;
  /** Refreshes that failed since start-up (a metric for operators). */
  refreshFailures: number;
  etag: string | null;
  lastModified: string | null;
}

interface Source {
  options: CrlSourceOptions;
  state: SourceState;
  loading: Promise<void> | null;
  verified: Map<string, boolean>;
}

const DEFAULT_FETCH_TIMEOUT_MS = 5_000;
const DEFAULT_MAX_CRL_BYTES = 16 * 1024 * 1024;
const DISTRIBUTION_POINT_REFRESH_SECONDS = 3_600;
/** How soon a source that never loaded is tried again from a decision. */
const FAILED_RETRY_SECONDS = 30;

export class CrlStore {
  readonly #options: CrlStoreOptions;
  readonly #sources = new Map<string, Source>();
  readonly #now: () => Date;
  #version = 0;

  constructor(options: CrlStoreOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
    for (const source of options.sources) this.#sources.set(source.name, newSource(source));
  }

  /** Loads every configured source now (start-up); failures are recorded, not thrown. */
  async refreshAll(): Promise<void> {
    await Promise.all([...this.#sources.values()].map((source) => this.#load(source)));
  }

  /** Refreshes the sources whose period is over; a Node timer calls this, Workers call it per request. */
  async refreshDue(): Promise<void> {
    await Promise.all(
      [...this.#sources.values()].filter((source) => this.#due(source)).map((source) => this.#load(source)),
    );
  }

  /** The configured sources' state (distribution points a certificate named are not included). */
  status(): SourceState[] {
    return [...this.#sources.values()]
      .filter((source) => !source.options.name.startsWith("dp:"))
      .map((source) => ({ ...source.state }));
  }

  /**
   * The revocation status of `certificate`, issued by `issuer` (both from a validated path), using the named
   * sources and, when asked, the certificate's own distribution points.
   */
  async check(
    certificate: X509Certificate,
    issuer: X509Certificate,
    options: { sources: readonly string[]; useDistributionPoints: boolean; staleGraceSeconds: number },
  ): Promise<RevocationStatus> {
    const candidates = options.sources
      .map((name) => this.#sources.get(name))
      .filter((source): source is Source => source !== undefined);
    if (options.useDistributionPoints) candidates.push(...this.#distributionPointSources(certificate));
    if (candidates.length === 0) return { status: "unknown", detail: "no CRL source for this certificate" };

    // A decision waits only for a source that holds no CRL yet (and not more often than FAILED_RETRY_SECONDS, so a
    // dead CRL server does not slow every decision); a due refresh of a CRL we hold runs in the background, since
    // freshness is judged by the CRL's own nextUpdate anyway.
    await Promise.all(
      candidates
        .filter((source) => source.state.crl === null && this.#retryDue(source))
        .map((source) => this.#load(source)),
    );
    for (const source of candidates) if (source.state.crl !== null && this.#due(source)) void this.#load(source);

    const issuerName = nameKeys(issuer).subject;
    const problems: string[] = [];
    for (const source of candidates) {
      const crl = source.state.crl;
      if (!crl) {
        problems.push(`${source.options.name}: no CRL loaded${source.state.error ? ` (${source.state.error})` : ""}`);
        continue;
      }
      if (crlIssuerKey(crl) !== issuerName) continue;
      if (!(await this.#verified(source, crl, issuer))) {
        problems.push(`${source.options.name}: CRL signature does not verify with the issuer's key`);
        continue;
      }
      const now = this.#now();
      const nextUpdate = crl.nextUpdate;
      if (crl.thisUpdate.getTime() > now.getTime() + 5 * 60_000) {
        problems.push(`${source.options.name}: CRL thisUpdate ${crl.thisUpdate.toISOString()} is in the future`);
        continue;
      }
      if (!nextUpdate || now.getTime() > nextUpdate.getTime() + options.staleGraceSeconds * 1000) {
        problems.push(`${source.options.name}: CRL is stale (nextUpdate ${nextUpdate?.toISOString() ?? "absent"})`);
        continue;
      }
      const serial = normaliseSerial(certificate.serialNumber);
      const entry = crl.entries.find((revoked) => normaliseSerial(revoked.serialNumber) === serial);
      if (entry)
        return {
          status: "revoked",
          detail: `serial ${serial.toUpperCase()} revoked ${entry.revocationDate.toISOString()} (${source.options.name})`,
          source: source.options.name,
        };
      return {
        status: "good",
        usableUntil: new Date(nextUpdate.getTime() + options.staleGraceSeconds * 1000),
        source: source.options.name,
      };
    }
    return {
      status: "unknown",
      detail: problems.length > 0 ? problems.join("; ") : `no CRL from issuer ${issuer.subject}`,
    };
  }

  /** A number that changes whenever any CRL changes (for caches keyed on revocation state). */
  get version(): number {
    return this.#version;
  }

  #retryDue(source: Source): boolean {
    const last = source.state.lastAttempt;
    const wait = Math.min(source.options.refreshSeconds, FAILED_RETRY_SECONDS) * 1000;
    return last === null || this.#now().getTime() - last.getTime() >= wait;
  }

  #due(source: Source): boolean {
    const last = source.state.lastAttempt;
    return last === null || this.#now().getTime() - last.getTime() >= source.options.refreshSeconds * 1000;
  }

  #distributionPointSources(certificate: X509Certificate): Source[] {
    let urls: string[];
    try {
      const extension = certificate.getExtension(x509.CRLDistributionPointsExtension);
      urls =
        extension?.distributionPoints.flatMap((point) =>
          (point.distributionPoint?.fullName ?? [])
            .map((name) => name.uniformResourceIdentifier)
            .filter((uri): uri is string => typeof uri === "string" && /^https?:\/\//i.test(uri)),
        ) ?? [];
    } catch {
      return [];
    }
    const sources: Source[] = [];
    for (const url of urls) {
      const key = `dp:${url}`;
      let source = this.#sources.get(key);
      if (!source) {
        const remembered = [...this.#sources.keys()].filter((name) => name.startsWith("dp:")).length;
        if (remembered >= (this.#options.maxDistributionPoints ?? 64)) continue;
        source = newSource({ name: key, url, refreshSeconds: DISTRIBUTION_POINT_REFRESH_SECONDS });
        this.#sources.set(key, source);
      }
      sources.push(source);
    }
    return sources;
  }

  async #verified(source: Source, crl: X509Crl, issuer: X509Certificate): Promise<boolean> {
    const key = `${source.state.version}:${issuer.serialNumber}:${nameKeys(issuer).subject}`;
    const known = source.verified.get(key);
    if (known !== undefined) return known;
    let ok: boolean;
    try {
      ok = await crl.verify({ publicKey: issuer.publicKey });
    } catch {
      ok = false;
    }
    source.verified.set(key, ok);
    return ok;
  }

  /** Loads one source; concurrent callers share one attempt. Failures keep the previous CRL. */
  #load(source: Source): Promise<void> {
    source.loading ??= this.#fetchInto(source).finally(() => {
      source.loading = null;
    });
    return source.loading;
  }

  async #fetchInto(source: Source): Promise<void> {
    const state = source.state;
    state.lastAttempt = this.#now();
    try {
      const body = source.options.file ? await this.#readFile(source.options.file) : await this.#download(source);
      if (body !== null) {
        const crl = parseCrl(body, this.#options.maxCrlBytes ?? DEFAULT_MAX_CRL_BYTES);
        state.crl = crl;
        this.#version += 1;
        state.version = this.#version;
        source.verified.clear();
      }
      state.lastSuccess = this.#now();
      state.error = null;
    } catch (error) {
      state.error = (error as Error).message;
      state.refreshFailures += 1;
      this.#options.log?.({
        level: "warn",
        msg: "CRL refresh failed",
        source: source.options.name,
        location: state.location,
        error: state.error,
      });
    }
  }

  async #readFile(path: string): Promise<Uint8Array> {
    if (!this.#options.readFile) throw new Error("CRL files cannot be read in this runtime");
    return await this.#options.readFile(path);
  }

  /** Downloads with If-None-Match / If-Modified-Since; null means "not modified". */
  async #download(source: Source): Promise<Uint8Array | null> {
    const fetcher = this.#options.fetch ?? globalThis.fetch;
    const headers: Record<string, string> = { Accept: "application/pkix-crl, application/x-pkcs7-crl, */*" };
    if (source.state.crl && source.state.etag) headers["If-None-Match"] = source.state.etag;
    if (source.state.crl && source.state.lastModified) headers["If-Modified-Since"] = source.state.lastModified;
    const response = await fetcher(source.options.url as string, {
      headers,
      signal: AbortSignal.timeout(this.#options.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS),
      redirect: "follow",
    });
    if (response.status === 304) {
      await response.body?.cancel();
      return null;
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`HTTP ${response.status} from ${source.options.url}`);
    }
    const declared = Number(response.headers.get("content-length") ?? "0");
    if (declared > (this.#options.maxCrlBytes ?? DEFAULT_MAX_CRL_BYTES)) {
      await response.body?.cancel();
      throw new Error(`CRL at ${source.options.url} is larger than the limit`);
    }
    const body = new Uint8Array(await response.arrayBuffer());
    source.state.etag = response.headers.get("etag");
    source.state.lastModified = response.headers.get("last-modified");
    return body;
  }
}

function newSource(options: CrlSourceOptions): Source {
  return {
    options,
    state: {
      name: options.name,
      location: options.file ?? options.url ?? "",
      crl: null,
      version: 0,
      lastAttempt: null,
      lastSuccess: null,
      error: null,
      refreshFailures: 0,
      etag: null,
      lastModified: null,
    },
    loading: null,
    verified: new Map(),
  };
}

/** DER or PEM ("-----BEGIN X509 CRL-----"). */
export function parseCrl(body: Uint8Array, maxBytes: number): X509Crl {
  if (body.length > maxBytes) throw new Error(`CRL of ${body.length} bytes is larger than the limit of ${maxBytes}`);
  const text = body.length < 64 * 1024 * 1024 ? Buffer.from(body).toString("latin1") : "";
  try {
    if (text.includes("-----BEGIN X509 CRL-----"))
      return new x509.X509Crl(text.slice(text.indexOf("-----BEGIN X509 CRL-----")));
    return new x509.X509Crl(body);
  } catch (error) {
    throw new Error(`not a DER or PEM CRL (${(error as Error).message.split("\n")[0]})`, { cause: error });
  }
}

function normaliseSerial(hex: string): string {
  return hex.toLowerCase().replace(/^0+/, "") || "0";
}

const crlIssuers = new WeakMap<X509Crl, string>();

function crlIssuerKey(crl: X509Crl): string {
  let key = crlIssuers.get(crl);
  if (key === undefined) {
    key = nameKey(crl.issuerName);
    crlIssuers.set(crl, key);
  }
  return key;
}
