/**
 * One policy request, decided: the attributes Postfix sends become Decider requests, the verdicts and the
 * mail-flow checks become one `action=`. No policy of its own: who may relay is the certificate query's and the
 * allowance query's answer, the sender rule is the relay's `sender-login` check, and the reply texts are the
 * contract's table.
 *
 *   1. the client's sender group (client_address in the listener's host access table): none, or a `reject`
 *      policy, is `REJECT 5.7.1 Access denied` (the relay's connect checks);
 *   2. the identity: `sasl_username` (Postfix authenticated it) → decideIdentity; else a certificate Postfix
 *      verified (`ccert_subject` is sent only then) known by `ccert_fingerprint` / `ccert_pubkey_fingerprint`
 *      (SHA-256: `smtpd_tls_fingerprint_digest = sha256`) → decideCertificateFacts; else nobody;
 *   3. with an identity and a sender: the `sender-login` check under the sender group's mail-flow policy.
 *
 * Actions: `OK` for a certificate that maps to an allowed identity (it may relay); `DUNNO` otherwise (a SASL
 * login Postfix's own permit_sasl_authenticated then lets through, or nobody); `REJECT <enhanced> <text>` for a
 * refusal; `DEFER_IF_PERMIT 4.7.0 …` when the directory cannot answer or the Decider does not.
 */
import type { MtaFactsDecider } from "../../contract/decider.ts";
import type { HostAccessTable } from "../../contract/host-access-table.ts";
import { SMTP_REPLIES, type SmtpReply } from "../../contract/smtp-replies.ts";
import type { Verdict } from "../../contract/verdict.ts";
import { CONNECT_CHECKS } from "../../mail-flow/checks/connect.ts";
import { SENDER_LOGIN_CHECK } from "../../mail-flow/checks/mail.ts";
import { firstRefusal, type Finding } from "../../mail-flow/stage.ts";
import { decodeXtext, type PolicyAttributes } from "./protocol.ts";

export interface PolicyContext {
  /** The smtpgate listener this policy server decides for. */
  listener: string;
  decider: MtaFactsDecider;
  /** The listener's host access table, as it is now (a reload or a refresh may replace it). */
  hostAccessTable(): HostAccessTable;
  /** Correlates the API's decision log lines with this server's (e.g. "policy-3.7": connection 3, request 7). */
  session: string;
}

/** What a request came to, for the answer and the log line. */
export interface PolicyOutcome {
  action: string;
  /** What decided it: a mail-flow check's name, `certificate`, `identity`, `decider`, or null (nothing objected). */
  decidedBy: string | null;
  identity: string | null;
  /** Operator detail (never sent to Postfix). */
  note?: string;
  decisionId?: string;
  temporary?: boolean;
  warnings: Finding[];
}

/** The attribute is absent, empty, or — for numbers — "0": all mean "unavailable" (SMTPD_POLICY_README). */
function attribute(attributes: PolicyAttributes, name: string): string | undefined {
  const value = attributes.get(name);
  return value === undefined || value === "" ? undefined : value;
}

const TEMPORARY_FAILURE = SMTP_REPLIES.authTemporaryFailure;

/** A reply from the contract's table as a Postfix access(5) action: 5xx refuses, 4xx defers. */
export function actionFor(reply: SmtpReply): string {
  return `${reply.code >= 500 ? "REJECT" : "DEFER_IF_PERMIT"} ${reply.enhanced} ${reply.text}`;
}

/** `AB:CD:…` (Postfix's format) as 64 lower-case hex digits; null for any other digest or format. */
export function sha256Fingerprint(value: string | undefined): string | null {
  if (value === undefined) return null;
  const hex = value.replaceAll(":", "").toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? hex : null;
}

const IP = /^[0-9a-fA-F:.]+$/;

export async function decidePolicy(attributes: PolicyAttributes, context: PolicyContext): Promise<PolicyOutcome> {
  const warnings: Finding[] = [];
  const client = attribute(attributes, "client_address") ?? "";
  const senderGroup = IP.test(client) ? context.hostAccessTable().match(client) : null;
  const connectRefusal = firstRefusal(CONNECT_CHECKS, {
    shuttingDown: false,
    client,
    senderGroup,
    // Postfix counts its own connections (smtpd_client_connection_count_limit).
    connectionsFromClient: 1,
  });
  if (connectRefusal || !senderGroup)
    return {
      action: actionFor(connectRefusal?.reply ?? SMTP_REPLIES.accessDenied),
      decidedBy: connectRefusal?.check ?? "sender-group",
      identity: null,
      ...(connectRefusal?.note ? { note: connectRefusal.note } : {}),
      warnings,
    };

  const asked = await askForIdentity(attributes, { ...context, client });
  if (asked.kind === "answered") return { ...asked.outcome, warnings };
  if (asked.kind === "nobody") return { action: "DUNNO", decidedBy: null, identity: null, note: asked.note, warnings };

  const { verdict } = asked;
  const identity = verdict.identity as string;
  const sender = attributes.get("sender");
  const refusal =
    sender === undefined
      ? null
      : firstRefusal(
          [SENDER_LOGIN_CHECK],
          {
            policy: senderGroup.policy,
            secure: attribute(attributes, "encryption_protocol") !== undefined,
            identity,
            shuttingDown: false,
            sender,
            declaredSize: null,
            addresses: verdict.addresses,
          },
          (warning) => warnings.push(warning),
        );
  const decided = { identity, decisionId: verdict.decisionId, temporary: verdict.temporary, warnings };
  if (refusal)
    return {
      ...decided,
      action: actionFor(refusal.reply),
      decidedBy: refusal.check,
      ...(refusal.note ? { note: refusal.note } : {}),
    };
  // A certificate Postfix cannot map itself is what makes this client a relay client; a SASL login is Postfix's
  // to permit (permit_sasl_authenticated after this check), so the answer adds only refusals to it.
  return { ...decided, action: asked.kind === "certificate" ? "OK" : "DUNNO", decidedBy: asked.kind };
}

type Asked =
  | { kind: "identity" | "certificate"; verdict: Verdict & { verdict: "allow" } }
  | { kind: "nobody"; note: string }
  | { kind: "answered"; outcome: Omit<PolicyOutcome, "warnings"> };

async function askForIdentity(
  attributes: PolicyAttributes,
  context: PolicyContext & { client: string },
): Promise<Asked> {
  const base = {
    listener: context.listener,
    session: context.session,
    client: { ip: context.client, helo: attribute(attributes, "helo_name") },
  };
  const login = attribute(attributes, "sasl_username");
  if (login !== undefined)
    return await ask("identity", () => context.decider.decideIdentity({ ...base, identity: login }));

  const rawFingerprint = attribute(attributes, "ccert_fingerprint");
  const rawKeyFingerprint = attribute(attributes, "ccert_pubkey_fingerprint");
  if (rawFingerprint === undefined && rawKeyFingerprint === undefined)
    return { kind: "nobody", note: "no SASL login and no client certificate" };
  // Postfix sends the names only for a certificate it verified (smtpd_check.c, TLS_CERT_IS_TRUSTED), the
  // fingerprints for any: without a subject there is no verified certificate to map.
  const subject = attribute(attributes, "ccert_subject");
  if (subject === undefined)
    return { kind: "nobody", note: "a client certificate Postfix did not verify (no ccert_subject): not used" };
  const subjectCn = decodeXtext(subject);
  const issuer = attribute(attributes, "ccert_issuer");
  const issuerCn = issuer === undefined ? null : decodeXtext(issuer);
  const sha256 = sha256Fingerprint(rawFingerprint);
  const spkiSha256 = sha256Fingerprint(rawKeyFingerprint);
  const certificate = {
    ...(sha256 ? { sha256 } : {}),
    ...(spkiSha256 ? { spkiSha256 } : {}),
    ...(subjectCn ? { subjectCn } : {}),
    ...(issuerCn ? { issuerCn } : {}),
  };
  const asked = await ask("certificate", () => context.decider.decideCertificateFacts({ ...base, certificate }));
  if (sha256 === null && spkiSha256 === null && asked.kind === "answered")
    asked.outcome.note =
      `${asked.outcome.note ?? ""}; the fingerprints are not SHA-256: set smtpd_tls_fingerprint_digest = sha256`.replace(
        /^; /,
        "",
      );
  return asked;
}

async function ask(kind: "identity" | "certificate", call: () => Promise<Verdict>): Promise<Asked> {
  let verdict: Verdict;
  try {
    verdict = await call();
  } catch (error) {
    // No answer (the API unreachable, slow, or the request refused): never an accept.
    return {
      kind: "answered",
      outcome: {
        action: actionFor(TEMPORARY_FAILURE),
        decidedBy: "decider",
        identity: null,
        note: (error as Error).message,
      },
    };
  }
  const decided = { decisionId: verdict.decisionId, identity: verdict.identity };
  switch (verdict.verdict) {
    case "allow":
      return { kind, verdict: verdict as Verdict & { verdict: "allow" } };
    case "continue":
      // The profile falls back to SMTP AUTH: no identity yet, Postfix's other restrictions decide.
      return { kind: "answered", outcome: { ...decided, action: "DUNNO", decidedBy: kind, note: verdict.reason } };
    case "deny":
    case "tempfail":
      return {
        kind: "answered",
        outcome: {
          ...decided,
          action: actionFor(
            verdict.smtp ?? (verdict.verdict === "deny" ? SMTP_REPLIES.accessDenied : TEMPORARY_FAILURE),
          ),
          decidedBy: kind,
          note: verdict.reason,
        },
      };
  }
}
