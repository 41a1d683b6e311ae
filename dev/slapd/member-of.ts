// memberOf for slapadd: slapadd writes straight into the backend, past the memberof overlay, so the operational
// memberOf values are computed here from the groupOfNames `member` values of the whole LDIF (seed + extraLdif)
// and written into the member entries. Handles plain and base64 (`::`) values and folded lines; entries only
// (no changetype records).

function normDn(dn: string): string {
  return dn
    .split(",")
    .map((rdn) =>
      rdn
        .trim()
        .replace(/\s*=\s*/, "=")
        .toLowerCase(),
    )
    .join(",");
}

function parseLine(line: string): { attr: string; value: string } | undefined {
  const m = /^([A-Za-z0-9;-]+)(::?)\s*(.*)$/.exec(line);
  if (!m) return undefined;
  const [, attr = "", sep, raw = ""] = m;
  return { attr: attr.toLowerCase(), value: sep === "::" ? Buffer.from(raw, "base64").toString("utf8") : raw };
}

export function withMemberOf(ldif: string): string {
  const records = ldif
    .replace(/\r\n/g, "\n")
    .replace(/\n /g, "") // unfold
    .split(/\n[ \t]*\n/)
    .map((r) => r.split("\n").filter((l) => l.length > 0 && !l.startsWith("#")))
    .filter((lines) => lines.length > 0 && !(lines.length === 1 && /^version:/i.test(lines[0] ?? "")));
  const dnOf = (lines: string[]): string | undefined => {
    const first = lines[0] === undefined ? undefined : parseLine(lines[0]);
    return first?.attr === "dn" ? first.value : undefined;
  };
  const memberOf = new Map<string, string[]>();
  for (const lines of records) {
    const groupDn = dnOf(lines);
    if (groupDn === undefined) continue;
    for (const l of lines) {
      const p = parseLine(l);
      if (p?.attr === "member") {
        const key = normDn(p.value);
        memberOf.set(key, [...(memberOf.get(key) ?? []), groupDn]);
      }
    }
  }
  return (
    records
      .map((lines) => {
        const dn = dnOf(lines);
        const groups = dn === undefined ? undefined : memberOf.get(normDn(dn));
        if (!groups) return lines.join("\n");
        const present = new Set(
          lines
            .map(parseLine)
            .filter((p) => p?.attr === "memberof")
            .map((p) => normDn(p?.value ?? "")),
        );
        const extra = groups.filter((g) => !present.has(normDn(g))).map((g) => `memberOf: ${g}`);
        return [...lines, ...extra].join("\n");
      })
      .join("\n\n") + "\n"
  );
}
