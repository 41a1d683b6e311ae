/**
 * CONNECT: before the greeting. The host access table has matched the client's address to a sender group (first
 * match wins, docs/configuration.md); these checks decide whether the session starts at all.
 */
import type { SenderGroupMatch } from "../../contract/host-access-table.ts";
import { SMTP_REPLIES } from "../../contract/smtp-replies.ts";
import { refuse, type Check, type Objection } from "../stage.ts";
import { shuttingDown } from "./session.ts";

export type { SenderGroupMatch };

export interface ConnectFacts {
  readonly shuttingDown: boolean;
  readonly client: string;
  /** null: the address matches no sender group. */
  readonly senderGroup: SenderGroupMatch | null;
  /** Sessions open from the client's address, this one included. */
  readonly connectionsFromClient: number;
}

function senderGroup(facts: ConnectFacts): Objection | null {
  return facts.senderGroup ? null : refuse(SMTP_REPLIES.accessDenied, "matches no sender group");
}

/** `reject` answers 554; `tcprefuse` is closed before the greeting (on the raw socket), and 554 should it get here. */
function policyBehaviour(facts: ConnectFacts): Objection | null {
  const behaviour = facts.senderGroup?.policy.behaviour;
  return behaviour === "reject" || behaviour === "tcprefuse"
    ? refuse(SMTP_REPLIES.accessDenied, `sender group ${facts.senderGroup?.group}: behaviour ${behaviour}`)
    : null;
}

function connectionLimit(facts: ConnectFacts): Objection | null {
  const limit = facts.senderGroup?.policy.maxConnectionsPerClient ?? Infinity;
  return facts.connectionsFromClient > limit
    ? refuse(SMTP_REPLIES.tooManyConnections, `more than ${limit} connections from the address`)
    : null;
}

export const CONNECT_CHECKS: readonly Check<ConnectFacts>[] = [
  { name: "shutting-down", test: shuttingDown },
  { name: "sender-group", test: senderGroup },
  { name: "policy-behaviour", test: policyBehaviour },
  { name: "connection-limit", test: connectionLimit },
];
