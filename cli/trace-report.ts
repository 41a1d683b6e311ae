/**
 * The printed form of a traced decision (decision-trace.ts): one block per step in the order the core took them,
 * then the verdict. Never a password: a bind shows the DN it was for and the directory's answer.
 */
import type { Config } from "../api/config/schema.ts";
import { ldapResultText } from "../api/core/ldap-results.ts";
import type { Decision } from "../api/core/verdict.ts";
import type { HostAttempt } from "../api/ldap/ldap-directory.ts";
import type { CrlStore } from "../api/pki/crl-store.ts";
import { describeRevocation } from "./cert-inspect.ts";
import type { GateResult } from "../api/gate/gate.ts";
import { EXIT, UsageError } from "./command.ts";
import type { TracedGate, TraceStep } from "./decision-trace.ts";
import { diagnose } from "./ldap-diagnosis.ts";

export interface ReportContext {
  config: Config;
  crls: CrlStore | null;
  /** What each search in turn is for (the core's order: e.g. the user query, then the allowance query). */
  searchRoles: readonly string[];
}

export function formatSteps(steps: readonly TraceStep[], context: ReportContext): string[] {
  const lines: string[] = [];
  let searches = 0;
  for (const step of steps) {
    switch (step.kind) {
      case "search": {
        const role = context.searchRoles[searches] ?? "search";
        searches += 1;
        lines.push(`${role} (directory ${step.directory})`);
        lines.push(`  base      ${step.request.baseDn}`);
        lines.push(`  scope     ${step.request.scope ?? "sub"}`);
        lines.push(`  filter    ${step.request.filter}`);
        lines.push(...hostLines(step.hosts, step.directory, context.config));
        if (!step.result.ok) lines.push(`  result    directory unavailable: ${step.result.error.detail}`);
        else lines.push(...entryLines(step.result.value, step.request.binaryAttributes ?? []));
        break;
      }
      case "bind":
        lines.push(`bind as the user (directory ${step.directory})`);
        lines.push(`  dn        ${step.dn}`);
        lines.push(...hostLines(step.hosts, step.directory, context.config));
        lines.push(`  result    ${bindResult(step.result)}`);
        break;
      case "path":
        lines.push("certificate path");
        lines.push(
          step.result.ok
            ? `  valid     ${step.result.path.map((certificate) => certificate.subject).join(" <- ")} (trust anchor)`
            : `  INVALID   ${step.result.reason}: ${step.result.detail}`,
        );
        break;
      case "revocation":
        lines.push("revocation");
        lines.push(
          `  ${context.crls ? describeRevocation(step.certificate, step.status, context.crls) : step.status.status}`,
        );
        break;
    }
  }
  return lines;
}

function bindResult(result: Extract<TraceStep, { kind: "bind" }>["result"]): string {
  if (!result.ok) return `directory unavailable: ${result.error.detail}`;
  if (result.value.bound) return "accepted: the password is right";
  const text = ldapResultText(result.value.resultCode, result.value.message);
  // A wrong password gets invalid credentials (49) and nothing more, on purpose; so may a locked account.
  return `refused: ${text}${result.value.resultCode === 49 ? ": a wrong password, or an account that is locked or expired" : ""}`;
}

function hostLines(hosts: readonly HostAttempt[], directory: string, config: Config): string[] {
  const settings = config.directories[directory];
  return hosts.flatMap((attempt) => {
    const ms = Math.round(attempt.ms);
    if (attempt.error === undefined) return [`  host      ${attempt.host} answered in ${ms} ms`];
    const lines = [`  host      ${attempt.host} FAILED after ${ms} ms`];
    if (settings) {
      const diagnosis = diagnose(attempt.error, { directory, config: settings, host: attempt.host });
      lines.push(`            ${diagnosis.what}`, `            fix: ${diagnosis.fix}`);
    }
    return lines;
  });
}

function entryLines(
  entries: readonly { dn: string; attributes: Readonly<Record<string, readonly (string | Buffer)[]>> }[],
  binary: readonly string[],
): string[] {
  const lines = [`  found     ${entries.length} entr${entries.length === 1 ? "y" : "ies"}`];
  const hidden = new Set(binary.map((name) => name.toLowerCase()));
  for (const entry of entries) {
    lines.push(`            ${entry.dn}`);
    // Binary attributes are password hashes and certificates: never printed.
    for (const [name, values] of Object.entries(entry.attributes)) {
      // "1.1" is how a search asks for no attributes at all.
      if (name === "1.1" || values.length === 0) continue;
      if (hidden.has(name.toLowerCase()))
        lines.push(`              ${name}: (${values.length} value${values.length === 1 ? "" : "s"}, not shown)`);
      else lines.push(`              ${name}: ${values.map(String).join(", ")}`);
    }
  }
  return lines;
}

export function formatVerdict(decision: Decision): string[] {
  const smtp = decision.smtp
    ? `${decision.smtp.code} ${decision.smtp.enhanced} ${decision.smtp.text}`
    : "(none: the session goes on, AUTH is offered)";
  const lines = [`verdict     ${decision.verdict} (reason ${decision.reason})`, `  smtp      ${smtp}`];
  if (decision.identity !== null) lines.push(`  identity  ${decision.identity}`);
  if (decision.dn !== null) lines.push(`  dn        ${decision.dn}`);
  lines.push(`  profile   ${decision.profile}, method ${decision.method ?? "none"}`);
  if (decision.temporary) lines.push("  temporary yes: the allowance query failed and the listener allows temporarily");
  if (decision.close) lines.push("  close     yes: the relay closes the connection");
  if (decision.detail) lines.push(`  detail    ${decision.detail}`);
  return lines;
}

/**
 * Prints the trial: `header` lines, the steps, the verdict; resolves to the exit status. A request the gate refuses
 * (a field it needs) is a usage error.
 */
export function printTrial(
  header: readonly string[],
  result: GateResult,
  traced: Pick<TracedGate, "config" | "crls" | "trace">,
  searchRoles: readonly string[],
): number {
  if (!result.ok) throw new UsageError(`${result.field}: ${result.problem}`);
  const lines = [
    ...header,
    ...formatSteps(traced.trace.steps, { config: traced.config, crls: traced.crls, searchRoles }),
    ...formatVerdict(result.decision),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  return verdictStatus(result.decision);
}

/** allow: 0; deny and continue (not authenticated): 1; tempfail: 3. */
export function verdictStatus(decision: Decision): number {
  switch (decision.verdict) {
    case "allow":
      return EXIT.ok;
    case "tempfail":
      return EXIT.unavailable;
    case "deny":
    case "continue":
      return EXIT.problem;
  }
}
