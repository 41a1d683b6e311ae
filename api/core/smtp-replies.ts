/**
 * The SMTP replies smtpgate tells a relay to give (SPEC §5; RFC 4954, 3207, 3463). This table is the only place
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
  encryptionRequired: { code: 538, enhanced: "5.7.11", text: "Encryption required for requested authentication mechanism" },
  badSequence: { code: 503, enhanced: "5.5.1", text: "Bad sequence of commands" },
  unknownMechanism: { code: 504, enhanced: "5.5.4", text: "Unrecognized authentication type" },
  badBase64: { code: 501, enhanced: "5.5.2", text: "Cannot decode response" },
  authCancelled: { code: 501, enhanced: "5.7.0", text: "Authentication cancelled" },
  certificateRequired: { code: 554, enhanced: "5.7.1", text: "Valid client certificate required" },
  accessDenied: { code: 554, enhanced: "5.7.1", text: "Access denied" },
  relayDenied: { code: 554, enhanced: "5.7.1", text: "Relay access denied" },
  relayDeniedRecipient: { code: 550, enhanced: "5.7.1", text: "Relay access denied" },
} as const satisfies Record<string, SmtpReply>;
