/**
 * DATA, at the end of the message (the relay streams it to the upstream as it arrives and stops passing it on
 * past the limit; whether the client hears 250 is decided here and by the upstream's answer).
 */
import type { MailFlowPolicy } from "../../contract/listener-policy.ts";
import { SMTP_REPLIES } from "../../contract/smtp-replies.ts";
import { refuse, type Check, type Objection } from "../stage.ts";

export interface DataFacts {
  readonly policy: MailFlowPolicy;
  /** The message's bytes as counted (dot-unstuffed); counting may stop once the upstream transaction failed. */
  readonly bytes: number;
  /** The front's own limit for every policy (smtp-server's `size`) was exceeded. */
  readonly overFrontLimit: boolean;
}

function messageSize(facts: DataFacts): Objection | null {
  return facts.overFrontLimit || facts.bytes > facts.policy.maxMessageBytes
    ? refuse(SMTP_REPLIES.messageTooBig, `over ${facts.policy.maxMessageBytes} bytes: not relayed`)
    : null;
}

export const DATA_CHECKS: readonly Check<DataFacts>[] = [{ name: "message-size", test: messageSize }];
