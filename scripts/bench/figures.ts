// The names of the peer figures (parts/dovecot.ts and parts/postfix.ts record them, report.ts's targets compare
// them): one spelling, so a rename cannot turn a target into NaN.
export const PEER_FIGURES = {
  dovecotUncached: "Dovecot auth, uncached",
  dovecotCached: "Dovecot auth, cached",
  frontUncached: "smtpgate Dovecot-protocol front, uncached",
  frontCached: "smtpgate Dovecot-protocol front, cached",
  postfixSmtpgate: "Postfix + smtpgate sessions",
  postfixDovecot: "Postfix + Dovecot sessions",
  relayBesidePostfix: "relay sessions, greetingDelayMs 0, beside Postfix",
} as const;
