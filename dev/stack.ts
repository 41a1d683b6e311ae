// The whole smtpgate stack on loopback: a private slapd (seed users plus certificate entries), a client PKI
// with its CRL on a local HTTP server, the decision API, an upstream sink and one edge relay per listener.
// Used by the demo and the relay's end-to-end tests (the benchmark runs the API and relay as processes of their
// own, over directory-with-pki.ts).
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ConfigInput } from "../api/config/schema.ts";
import type { FrontsConfigInput } from "../contract/fronts-config.ts";
import { startFronts } from "../fronts/start-fronts.ts";
import { API_TOKENS_CONFIG, TEST_TOKEN, startTestApi, type TestApi } from "./api.ts";
import { writeClientPki, type ClientPki } from "./client-pki/index.ts";
import type { CrlServer } from "./crl-server.ts";
import { startDirectoryWithPki } from "./directory-with-pki.ts";
import { startTestRelay, type TestRelay } from "./relay.ts";
import { startSink, type Sink, type SunkMessage } from "./sink.ts";
import { SEED, type SlapdInstance } from "./slapd/index.ts";
import type { RelayConfigInput } from "../edge-relay/config.ts";

/** The listeners of the stack, one per flow of docs/flows.md. */
export const STACK_LISTENERS = {
  /** Flow A: certificate only (TLS required, client certificate verified, no AUTH). */
  certificate: "cert-only",
  /** Flow B: LDAP SMTP AUTH (TLS required, AUTH required). */
  password: "password",
  /** Flow C: certificate or LDAP (TLS preferred, certificate verified, AUTH required). */
  either: "cert-or-password",
  /** An MX-style listener: no AUTH, mail accepted only for example.com. */
  inbound: "inbound",
} as const;

/**
 * The stack's API configuration. `upstream`: where nginx's mail proxy hands the sessions the `either` listener
 * allowed (GET /v1/nginx/auth/cert-or-password), e.g. the sink.
 */
export function stackApiConfig(
  slapd: SlapdInstance,
  pki: ClientPki,
  crlBaseUrl: string,
  upstream?: { address: string; port: number },
): ConfigInput {
  const certificateProfile = (extra: Record<string, unknown>) => ({
    type: "certificate" as const,
    query: "by-mail",
    trustAnchors: { pem: pki.rootPem },
    // Many clients (swaks among them) send only their own certificate.
    intermediates: { pem: pki.intermediate.pem },
    revocation: { crlSources: ["client-ca"] },
    ...extra,
  });
  const everyone = ["127.0.0.0/8", "::1"];
  const smtpUsers = `(&(uid={u})(memberOf=${SEED.smtpUsersGroupDn}))`;
  return {
    directories: {
      corp: {
        hosts: [slapd.ldapUrl, slapd.ldapsUrl],
        tls: { caFile: slapd.pki.caFile },
        bind: { dn: SEED.serviceDn, password: { env: "BIND_PW" } },
        baseDn: SEED.baseDn,
      },
    },
    smtpAuthQueries: {
      corp: {
        directory: "corp",
        filter: "(uid={u})",
        method: "bind",
        allowance: { filter: smtpUsers },
      },
    },
    // One gate for both ways in: bob's valid certificate is refused like his password.
    certificateQueries: {
      "by-mail": {
        directory: "corp",
        filter: "(mail={email})",
        userIdAttribute: "uid",
        allowance: { filter: smtpUsers },
      },
    },
    crlSources: { "client-ca": { url: `${crlBaseUrl}/intermediate.crl`, refreshSeconds: 60 } },
    authProfiles: {
      corp: { type: "ldap", query: "corp" },
      "cert-only": certificateProfile({}),
      "cert-or-password": certificateProfile({ allowAuthFallback: "corp" }),
    },
    mailFlowPolicies: {
      CERTIFIED: {
        behaviour: "accept",
        tls: "required",
        verifyClientCertificate: true,
        smtpAuth: "required",
        maxMessageBytes: 1024 * 1024,
      },
      SUBMISSION: { behaviour: "accept", tls: "required", smtpAuth: "required", maxMessageBytes: 1024 * 1024 },
      EITHER: {
        behaviour: "accept",
        tls: "preferred",
        verifyClientCertificate: true,
        smtpAuth: "required",
        senderLogin: "enforce",
        maxMessageBytes: 1024 * 1024,
      },
      ACCEPTED: { behaviour: "accept", tls: "preferred", smtpAuth: "off", maxMessageBytes: 1024 * 1024 },
    },
    listeners: {
      [STACK_LISTENERS.certificate]: {
        authProfile: "cert-only",
        hostAccessTable: [{ name: "LOCAL", match: everyone, policy: "CERTIFIED" }],
        acceptedDomains: ["example.com"],
      },
      [STACK_LISTENERS.password]: {
        authProfile: "corp",
        hostAccessTable: [{ name: "LOCAL", match: everyone, policy: "SUBMISSION" }],
        acceptedDomains: ["example.com"],
      },
      [STACK_LISTENERS.either]: {
        authProfile: "cert-or-password",
        hostAccessTable: [{ name: "LOCAL", match: everyone, policy: "EITHER" }],
        acceptedDomains: ["example.com"],
        ...(upstream ? { upstream } : {}),
      },
      [STACK_LISTENERS.inbound]: {
        authProfile: "corp",
        hostAccessTable: [{ name: "LOCAL", match: everyone, policy: "ACCEPTED" }],
        acceptedDomains: ["example.com"],
      },
    },
    api: API_TOKENS_CONFIG,
  };
}

export interface Stack {
  slapd: SlapdInstance;
  pki: ClientPki;
  crls: CrlServer;
  api: TestApi;
  sink: Sink;
  relays: Record<string, TestRelay>;
  /** Files written by writeFiles(): PKI and CRLs by name. */
  files: Record<string, string>;
  close(): Promise<void>;
}

export interface StackOptions {
  listeners?: readonly string[];
  /** Protocol fronts the API serves in-process (the demo's Dovecot-SASL and policy sockets). */
  fronts?: FrontsConfigInput;
  /** Where the sink writes .eml files. */
  mailFolder?: string;
  /** Where the client PKI is written (CA, alice, revoked, ...). */
  pkiFolder?: string;
  apiPort?: number;
  /** The API token the API accepts and the relays send (default: the test token). */
  apiToken?: string;
  /** Fixed relay ports for the first listener (the demo); others get free ports. */
  relayPorts?: { starttls: number; implicitTls: number };
  relay?: Partial<RelayConfigInput>;
  onMessage?: (message: SunkMessage) => void;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const closer of closers.reverse()) await closer().catch(() => {});
  };
  try {
    const directory = await startDirectoryWithPki();
    closers.push(() => directory.close());
    const { slapd, pki, crls } = directory;
    const apiToken = options.apiToken ?? TEST_TOKEN;
    // With a token of its own (the demo), the API accepts that token only: not the test suite's rotation token.
    const tokens: Record<string, string> = options.apiToken ? { TEST_TOKEN: apiToken, TEST_TOKEN_NEXT: apiToken } : {};
    // The sink first: it is the upstream nginx's mail proxy hands sessions to (with XCLIENT), which the API names.
    const sink = await startSink({
      xclient: true,
      ...(options.mailFolder ? { folder: options.mailFolder } : {}),
      ...(options.onMessage ? { onMessage: options.onMessage } : {}),
    });
    closers.push(() => sink.close());
    const config = stackApiConfig(slapd, pki, crls.baseUrl, { address: "127.0.0.1", port: sink.port });
    const api = await startTestApi(
      options.fronts ? { ...config, fronts: options.fronts } : config,
      { BIND_PW: SEED.servicePassword, ...tokens },
      options.apiPort,
      options.fronts ? { startFronts } : {},
    );
    closers.push(() => api.close());
    const relays: Record<string, TestRelay> = {};
    for (const [index, listener] of (options.listeners ?? Object.values(STACK_LISTENERS)).entries()) {
      const fixed = index === 0 ? options.relayPorts : undefined;
      const relay = await startTestRelay({
        apiUrl: api.url,
        apiToken,
        listener,
        upstreamPort: sink.port,
        serverPki: slapd.pki,
        overrides: {
          ...options.relay,
          ...(fixed
            ? {
                listen: {
                  starttls: { host: "127.0.0.1", port: fixed.starttls },
                  implicitTls: { host: "127.0.0.1", port: fixed.implicitTls },
                },
              }
            : {}),
        },
      });
      closers.push(() => relay.close());
      relays[listener] = relay;
    }
    let files: Record<string, string> = {};
    if (options.pkiFolder) {
      await mkdir(options.pkiFolder, { recursive: true });
      files = await writeClientPki(pki, options.pkiFolder);
      await writeFile(join(options.pkiFolder, "relay-ca.pem"), slapd.pki.caPem);
      files["relay-ca.pem"] = join(options.pkiFolder, "relay-ca.pem");
    }
    return { slapd, pki, crls, api, sink, relays, files, close };
  } catch (error) {
    await close();
    throw error;
  }
}
