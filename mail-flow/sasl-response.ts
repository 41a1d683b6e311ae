/**
 * Strict decoding of SASL responses (RFC 4954 §4): every AUTH response, initial or not, is base64 (RFC 4648 §4,
 * canonical: padded, no characters outside the alphabet, no stray bits), else `501 5.5.2 Cannot decode response`
 * and no attempt. Node's Buffer.from(text, "base64") skips what it does not understand, so `@@@@` would decode to
 * an empty string and count as a password guess; the decoded text must also be UTF-8 (RFC 4616 §2), where a
 * lenient decoder would map different byte strings to the same U+FFFD password.
 */

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** The text a response carries, or null when it is not canonical base64 of UTF-8. "" (an empty line) is empty. */
export function decodeSaslResponse(response: string): string | null {
  const bytes = Buffer.from(response, "base64");
  if (bytes.toString("base64") !== response) return null;
  try {
    return UTF8.decode(bytes);
  } catch {
    return null;
  }
}

/** Like decodeSaslResponse for an initial response on the AUTH line, where `=` stands for an empty one. */
export function decodeInitialResponse(response: string): string | null {
  return response === "=" ? "" : decodeSaslResponse(response);
}
