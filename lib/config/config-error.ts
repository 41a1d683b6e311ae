/**
 * A configuration that cannot be used: where it came from and every problem with it, each a `{ path, message }`
 * value (never a string a caller must take apart). The message reads like a compiler's:
 *
 *   smtpgate.yaml: invalid configuration
 *     directories.corp.hosts[1]: not an ldap:// or ldaps:// URL (scheme, host and optional port only)
 *     listeners.submission: unknown key "hostAcessTable"; did you mean "hostAccessTable"?
 */
import { TOP_LEVEL, type ValueProblem } from "../validation/problems.ts";

export type ConfigProblem = ValueProblem;

export class ConfigError extends Error {
  override name = "ConfigError";
  readonly source: string;
  readonly problems: readonly ConfigProblem[];

  constructor(source: string, problems: readonly ConfigProblem[]) {
    super(`${source}: invalid configuration\n${problems.map(renderProblem).join("\n")}`);
    this.source = source;
    this.problems = problems;
  }
}

/** Throws a ConfigError for `problems`, if there are any. */
export function throwIfProblems(source: string, problems: readonly ConfigProblem[]): void {
  if (problems.length > 0) throw new ConfigError(source, problems);
}

/** `path: message`, the path left out where it is the whole document. */
export function problemText(problem: ConfigProblem): string {
  return problem.path === TOP_LEVEL ? problem.message : `${problem.path}: ${problem.message}`;
}

/** `  path: message`; further lines (an excerpt) indented. */
function renderProblem(problem: ConfigProblem): string {
  return problemText(problem)
    .split("\n")
    .map((line, index) => (index === 0 ? `  ${line}` : line === "" ? "" : `    ${line}`))
    .join("\n");
}
