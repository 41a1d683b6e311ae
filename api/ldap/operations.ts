/**
 * The LDAP operations both directory adapters (Node, pooled; Workers, per request) perform, on an ldapts Client
 * they hand in. One place for how a search is asked, how a user's bind answer is read and how failures are
 * described, so the two runtimes cannot drift apart on what a decision means.
 */
import {
  BusyError,
  InvalidCredentialsError,
  NoSuchObjectError,
  ResultCodeError,
  UnavailableError,
  type Client,
} from "ldapts";
import type { BindOutcome, DirectoryEntry, DirectoryResult, SearchRequest } from "../core/directory.ts";
import { ldapResultText } from "../core/ldap-results.ts";
import type { HostSelector } from "./host-selector.ts";

/**
 * Failover and load balancing (docs/configuration.md): runs `operation` on the hosts in the selector's order until one answers,
 * telling the selector each outcome. Every host failing is a value, `unavailable`, which the core turns into a
 * tempfail; the detail names each host and how it failed.
 */
export async function onSomeHost<T>(
  directory: string,
  selector: HostSelector,
  hosts: readonly string[],
  operation: (index: number) => Promise<T>,
): Promise<DirectoryResult<T>> {
  let failures = "";
  for (const index of selector.order()) {
    try {
      const value = await operation(index);
      selector.reportSuccess(index);
      return { ok: true, value };
    } catch (error) {
      selector.reportFailure(index);
      failures += `${failures === "" ? "" : "; "}${hosts[index]}: ${describe(error)}`;
    }
  }
  return { ok: false, error: { kind: "unavailable", detail: `directory ${directory}: ${failures}` } };
}

/**
 * A search (subtree unless asked otherwise) with aliases not dereferenced and no more entries than asked for. A
 * base read asked with missingBaseIsEmpty (a direct bind's unknown user) finds no entry when the DN does not
 * exist: an answer, not a failing host; any other missing base stays a failure (a wrong baseDn is the operator's
 * to see).
 */
export async function searchEntries(
  client: Client,
  request: SearchRequest,
  timeLimitSeconds: number,
): Promise<DirectoryEntry[]> {
  const result = await readEntries(client, request, timeLimitSeconds);
  // Continuation references (referrals) are ignored: they are never chased.
  return result.searchEntries.slice(0, request.sizeLimit).map(toEntry);
}

async function readEntries(client: Client, request: SearchRequest, timeLimitSeconds: number) {
  try {
    return await client.search(request.baseDn, {
      scope: request.scope ?? "sub",
      filter: request.filter,
      derefAliases: "never",
      attributes: request.attributes.length === 0 ? ["1.1"] : [...request.attributes],
      explicitBufferAttributes: [...(request.binaryAttributes ?? [])],
      sizeLimit: request.sizeLimit,
      timeLimit: timeLimitSeconds,
    });
  } catch (error) {
    if (request.scope === "base" && request.missingBaseIsEmpty && error instanceof NoSuchObjectError)
      return { searchEntries: [] };
    throw error;
  }
}

/**
 * RFC 4513 §5.1.2: a DN with an empty password is an "unauthenticated bind" that many servers accept. The core
 * refuses empty passwords first; adapters check this too, before anything is sent: a second lock on the door.
 */
export function refusedLocally(dn: string, password: string): BindOutcome | null {
  return dn === "" || password === ""
    ? { bound: false, resultCode: 49, message: "empty DN or password refused locally" }
    : null;
}

/** A user's simple bind: an LDAP "no" is an outcome; transport failures and "busy/unavailable" are thrown. */
export async function userBind(client: Client, dn: string, password: string): Promise<BindOutcome> {
  try {
    await client.bind(dn, password);
    return { bound: true };
  } catch (error) {
    if (error instanceof InvalidCredentialsError || (error instanceof ResultCodeError && !isServerTrouble(error))) {
      return { bound: false, resultCode: error.code, message: error.message };
    }
    throw error;
  }
}

/** The service identity's bind failed with an LDAP result: the profile's DN or password is wrong, not the host. */
export class ServiceBindRefused extends Error {
  override name = "ServiceBindRefused";
  readonly dn: string;
  readonly resultCode: number;

  constructor(dn: string, error: ResultCodeError) {
    super(`service bind as ${dn} refused: ${ldapResultText(error.code, error.message)}`);
    this.dn = dn;
    this.resultCode = error.code;
  }
}

/** Binds as the profile's service identity (none: anonymous, nothing sent); an LDAP "no" is ServiceBindRefused. */
export async function bindAsService(
  client: Client,
  identity: { dn: string; password: string } | undefined,
): Promise<void> {
  if (!identity) return;
  try {
    await client.bind(identity.dn, identity.password);
  } catch (error) {
    throw error instanceof ResultCodeError ? new ServiceBindRefused(identity.dn, error) : error;
  }
}

/** A cheap request any server answers: the root DSE. */
export async function readRootDse(client: Client): Promise<void> {
  await client.search("", { scope: "base", filter: "(objectClass=*)", attributes: ["1.1"], sizeLimit: 1 });
}

/** LDAP results that say "this server cannot answer now" rather than "no". */
export function isServerTrouble(error: ResultCodeError): boolean {
  return error instanceof BusyError || error instanceof UnavailableError;
}

/** One line about a failure, for operators (no secrets: ldapts messages carry none). */
export function describe(error: unknown): string {
  if (error instanceof ResultCodeError) return ldapResultText(error.code, error.message);
  if (error instanceof ServiceBindRefused) return error.message;
  if (error instanceof Error)
    return `${error.name === "Error" ? "" : `${error.name}: `}${error.message.split("\n")[0]}`;
  return String(error);
}

export function toEntry(entry: Record<string, unknown> & { dn: string }): DirectoryEntry {
  const attributes: Record<string, (string | Buffer)[]> = {};
  for (const [key, value] of Object.entries(entry)) {
    if (key === "dn") continue;
    attributes[key] = (Array.isArray(value) ? value : [value]) as (string | Buffer)[];
  }
  return { dn: entry.dn, attributes };
}
