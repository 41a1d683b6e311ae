/**
 * LDAP result codes (RFC 4511 §4.1.9 and Appendix A) as words, for log lines an operator can read:
 * `invalid credentials (49)`, not `LDAP result 49 ( Code: 0x31)`.
 */
const RESULT_NAMES: Readonly<Record<number, string>> = {
  1: "operations error",
  2: "protocol error",
  3: "time limit exceeded",
  4: "size limit exceeded",
  7: "authentication method not supported",
  8: "stronger authentication required",
  10: "referral",
  11: "administrative limit exceeded",
  13: "confidentiality required",
  32: "no such object",
  34: "invalid DN syntax",
  48: "inappropriate authentication",
  49: "invalid credentials",
  50: "insufficient access rights",
  51: "busy",
  52: "unavailable",
  53: "unwilling to perform",
  80: "other",
};

/** ldapts appends " Code: 0x31" to the server's diagnostic message (often empty). */
const LDAPTS_CODE_SUFFIX = /\s*Code: 0x[0-9a-f]+\s*$/i;

/** `invalid credentials (49)`, plus the server's diagnostic message when it gave one. */
export function ldapResultText(code: number, message = ""): string {
  const diagnostic = (message.split("\n")[0] ?? "").replace(LDAPTS_CODE_SUFFIX, "").trim();
  const text = `${RESULT_NAMES[code] ?? "LDAP result"} (${code})`;
  return diagnostic === "" ? text : `${text}: ${diagnostic}`;
}
