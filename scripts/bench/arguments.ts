// The benchmark's command line: `--quick`, `--only PART[,PART]`, `--baseline DIR`.

/** The parts of a run, in the order they are measured. */
export const PARTS = [
  "raw",
  "ping",
  "auth",
  "tls",
  "bruteforce",
  "dovecot",
  "sessions",
  "postfix",
  "nginx",
  "memory",
] as const;
export type Part = (typeof PARTS)[number];

export function benchArguments(argv: readonly string[]) {
  const valueOf = (flag: string): string | undefined => {
    const at = argv.indexOf(flag);
    return at >= 0 ? (argv[at + 1] ?? "") : undefined;
  };
  // `--only auth,ping` measures those parts alone (printed, no report written): for before/after runs of a change.
  const only = valueOf("--only")?.split(",") ?? null;
  const unknown = only?.find((part) => !(PARTS as readonly string[]).includes(part));
  if (unknown !== undefined) throw new Error(`--only: no part ${unknown} (parts: ${PARTS.join(", ")})`);
  return {
    /** One short run per figure. */
    QUICK: argv.includes("--quick"),
    ONLY: only,
    /**
     * `--baseline DIR`: a second API from another checkout of smtpgate (`git archive main | tar -x -C DIR`, with a
     * node_modules link), measured right after this one in every ping and auth figure: before and after a change
     * on one machine state, where two runs minutes apart differ by more than the change.
     */
    BASELINE_ROOT: valueOf("--baseline"),
    wanted: (part: Part): boolean => only === null || only.includes(part),
  };
}
