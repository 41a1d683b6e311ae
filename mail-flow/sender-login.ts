/**
 * Whether an envelope sender is one of the addresses an identity owns (`senderLogin`, Postfix's
 * `reject_sender_login_mismatch`). The addresses come with the verdict, from the directory entry (`mail`,
 * `mailAlternateAddress`, AD `proxyAddresses`).
 *
 * - Case: the whole address compares case-insensitively. Domains are case-insensitive (RFC 5321 §2.4); local
 *   parts may in theory be case-sensitive, but directories compare `mail` with caseIgnoreIA5Match and mail
 *   systems fold case in practice (Postfix's lookup tables do), so `Alice@Example.COM` is alice@example.com. No
 *   site hands `alice@` and `ALICE@` to two different people.
 * - Subaddresses: `alice+tag@example.com` is owned when `alice@example.com` is (the `+` recipient delimiter that
 *   Postfix, Exim and most mailbox servers use): a subaddress routes to its owner's mailbox. Only the sender's tag
 *   is dropped, at the first `+`, and only when something precedes it; an owned `alice+list@` does not make
 *   `alice@` owned.
 * - Nothing else is normalised (no dots removed, no IDNA mapping): an address the directory does not list, in
 *   one of those two forms, is not owned.
 */

/** The address as compared: lower-cased. */
function comparable(address: string): string {
  return address.toLowerCase();
}

/** `alice+tag@x` → `alice@x`; null when the address has no tag. */
function withoutSubaddress(address: string): string | null {
  const at = address.lastIndexOf("@");
  const plus = address.indexOf("+");
  if (at <= 0 || plus <= 0 || plus > at) return null;
  return address.slice(0, plus) + address.slice(at);
}

export function ownsSender(addresses: readonly string[], sender: string): boolean {
  const owned = new Set(addresses.map(comparable));
  const exact = comparable(sender);
  if (owned.has(exact)) return true;
  const base = withoutSubaddress(exact);
  return base !== null && owned.has(base);
}
