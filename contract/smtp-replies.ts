/**
 * The SMTP replies smtpgate tells a relay to give (RFC 4954, 3207, 3463). This table is the only place
 * they are written down. The texts never say whether the user name or the password was wrong.
 */
export interface SmtpReply {
  readonly code: number;
  readonly enhanced: string;
  readonly text: string;
}

export const SMTP_REPLIES = {
  authSucceeded: { code: 235, enhanced: "2.7.0", text: "Authentication succeeded" },
  authInvalid: { code: 535, enhanced: "5.7.8", text: "Authentication credentials invalid" },
  authTemporaryFailure: { code: 454, enhanced: "4.7.0", text: "Temporary authentication failure" },
  authRequired: { code: 530, enhanced: "5.7.0", text: "Authentication required" },
  startTlsFirst: { code: 530, enhanced: "5.7.0", text: "Must issue a STARTTLS command first" },
  encryptionRequired: {
    code: 538,
    enhanced: "5.7.11",
    text: "Encryption required for requested authentication mechanism",
  },
  badSequence: { code: 503, enhanced: "5.5.1", text: "Bad sequence of commands" },
  unknownMechanism: { code: 504, enhanced: "5.5.4", text: "Unrecognized authentication type" },
  badBase64: { code: 501, enhanced: "5.5.2", text: "Cannot decode response" },
  syntaxError: { code: 501, enhanced: "5.5.4", text: "Syntax error in parameters or arguments" },
  authCancelled: { code: 501, enhanced: "5.7.0", text: "Authentication cancelled" },
  certificateRequired: { code: 554, enhanced: "5.7.1", text: "Valid client certificate required" },
  accessDenied: { code: 554, enhanced: "5.7.1", text: "Access denied" },
  relayDenied: { code: 554, enhanced: "5.7.1", text: "Relay access denied" },
  relayDeniedRecipient: { code: 550, enhanced: "5.7.1", text: "Relay access denied" },
  // The edge relay's own replies.
  tooManyConnections: { code: 421, enhanced: "4.7.0", text: "Too many connections from your host, try again later" },
  tooManyAuthFailures: { code: 421, enhanced: "4.7.0", text: "Too many authentication failures, closing connection" },
  authNotAvailable: { code: 503, enhanced: "5.5.1", text: "Authentication not available" },
  alreadyAuthenticated: { code: 503, enhanced: "5.5.1", text: "Already authenticated" },
  tooManyRecipients: { code: 452, enhanced: "4.5.3", text: "Too many recipients" },
  messageTooBig: { code: 552, enhanced: "5.3.4", text: "Message size exceeds fixed limit" },
  messageRelayed: { code: 250, enhanced: "2.0.0", text: "Ok: relayed" },
  // After a refused delivery status notification: the text names what was delivered and what was not.
  partlyDelivered: { code: 554, enhanced: "5.0.0", text: "Delivered to some recipients only" },
  upstreamUnavailable: { code: 451, enhanced: "4.4.1", text: "Upstream server unavailable, try again later" },
  upstreamFailed: { code: 451, enhanced: "4.4.2", text: "Upstream server failed during delivery, try again later" },
  // upstream.xclient: required, and the upstream does not offer XCLIENT (RFC 3463 X.3.5: wrongly configured).
  upstreamWithoutXclient: { code: 451, enhanced: "4.3.5", text: "Upstream server not configured for this relay" },
  shuttingDown: { code: 421, enhanced: "4.3.2", text: "Service shutting down, try again later" },
  // Slow clients (docs/edge-relay.md): a command line, DATA or the session past its deadline; the connection is closed.
  commandDeadline: { code: 421, enhanced: "4.4.2", text: "Command line not completed in time, closing connection" },
  dataDeadline: { code: 421, enhanced: "4.4.2", text: "Message data too slow, closing connection" },
  sessionDeadline: { code: 421, enhanced: "4.4.2", text: "Session lasted too long, closing connection" },
} as const satisfies Record<string, SmtpReply>;

/** Replies that carry a value. The value is the server's own (an identity from the directory), never client text. */
export const SMTP_REPLY_BUILDERS = {
  /** `senderLogin: enforce` and the envelope sender is not one of the identity's addresses (Postfix's wording). */
  senderNotOwned(identity: string): SmtpReply {
    return { code: 553, enhanced: "5.7.1", text: `Sender address rejected: not owned by user ${identity}` };
  },
} as const;
