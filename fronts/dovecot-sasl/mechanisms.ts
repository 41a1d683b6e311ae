/**
 * The SASL mechanisms a Dovecot-protocol request carries, as pure steps: PLAIN (RFC 4616; with or without an
 * initial response) and LOGIN (a user name, then a password, each asked for with a CONT). Every response is strict
 * base64 of UTF-8, decoded by the relay's own decoder (mail-flow/sasl-response.ts): what does not decode is refused
 * and never counts as a password guess.
 */
import { SMTP_REPLIES } from "../../contract/smtp-replies.ts";
import { decodeInitialResponse, decodeSaslResponse } from "../../mail-flow/sasl-response.ts";
import type { Mechanism } from "./protocol.ts";

export interface Credentials {
  mechanism: Mechanism;
  username: string;
  password: string;
  authzid: string | undefined;
}

export type SaslStep =
  /** Ask the client for more: send `CONT` with this challenge and keep the state. */
  | { kind: "challenge"; challenge: string; state: SaslState }
  | { kind: "credentials"; credentials: Credentials }
  /** Send `FAIL` with this reason; no decision is asked for. */
  | { kind: "refused"; reason: string };

/** Where a request waiting for a CONT stands. */
export type SaslState = { mechanism: "PLAIN" } | { mechanism: "LOGIN"; username: string | undefined };

const LOGIN_USERNAME_CHALLENGE = "Username:";
const LOGIN_PASSWORD_CHALLENGE = "Password:";
const NOT_BASE64 = { kind: "refused", reason: SMTP_REPLIES.badBase64.text } as const;

/** The first step of a request: `initialResponse` is the AUTH line's `resp=` (base64), or undefined. */
export function startSasl(mechanism: Mechanism, initialResponse: string | undefined): SaslStep {
  if (initialResponse === undefined) {
    return mechanism === "PLAIN"
      ? { kind: "challenge", challenge: "", state: { mechanism } }
      : { kind: "challenge", challenge: LOGIN_USERNAME_CHALLENGE, state: { mechanism, username: undefined } };
  }
  // An empty `resp=` from a client of minor version 2 or later (parseAuth), or `=`, RFC 4954's spelling of one.
  const text = initialResponse === "" ? "" : decodeInitialResponse(initialResponse);
  if (text === null) return NOT_BASE64;
  return mechanism === "PLAIN" ? plainCredentials(text) : loginStep(undefined, text);
}

/** The next step, from a CONT's base64 response. */
export function continueSasl(state: SaslState, response: string): SaslStep {
  const text = decodeSaslResponse(response);
  if (text === null) return NOT_BASE64;
  return state.mechanism === "PLAIN" ? plainCredentials(text) : loginStep(state.username, text);
}

function loginStep(username: string | undefined, text: string): SaslStep {
  if (username === undefined) {
    return { kind: "challenge", challenge: LOGIN_PASSWORD_CHALLENGE, state: { mechanism: "LOGIN", username: text } };
  }
  return { kind: "credentials", credentials: { mechanism: "LOGIN", username, password: text, authzid: undefined } };
}

/** RFC 4616 §2: `[authzid] NUL authcid NUL passwd`, exactly two NULs. */
function plainCredentials(text: string): SaslStep {
  const parts = text.split("\u0000");
  if (parts.length !== 3) return { kind: "refused", reason: SMTP_REPLIES.syntaxError.text };
  const [authzid = "", username = "", password = ""] = parts;
  return {
    kind: "credentials",
    credentials: { mechanism: "PLAIN", username, password, authzid: authzid === "" ? undefined : authzid },
  };
}
