import { describe, expect, it } from "vitest";
import { SMTP_REPLIES } from "../../contract/smtp-replies.ts";
import { firstRefusal } from "../stage.ts";
import { CONNECT_CHECKS, type ConnectFacts } from "./connect.ts";
import { policy } from "./test-facts.ts";

const facts = (overrides: Partial<ConnectFacts> = {}): ConnectFacts => ({
  shuttingDown: false,
  client: "192.0.2.7",
  senderGroup: { group: "LOCAL", policyName: "RELAYED", policy: policy({ maxConnectionsPerClient: 2 }) },
  connectionsFromClient: 1,
  ...overrides,
});

describe("CONNECT checks", () => {
  it("let a client of a sender group in, up to its connection limit", () => {
    expect(firstRefusal(CONNECT_CHECKS, facts())).toBeNull();
    expect(firstRefusal(CONNECT_CHECKS, facts({ connectionsFromClient: 2 }))).toBeNull();
  });

  it("answer 421 4.3.2 while shutting down, before anything else", () => {
    expect(firstRefusal(CONNECT_CHECKS, facts({ shuttingDown: true, senderGroup: null }))).toMatchObject({
      check: "shutting-down",
      reply: SMTP_REPLIES.shuttingDown,
    });
  });

  it("answer 554 5.7.1 to an address that matches no sender group", () => {
    expect(firstRefusal(CONNECT_CHECKS, facts({ senderGroup: null }))).toMatchObject({
      check: "sender-group",
      reply: SMTP_REPLIES.accessDenied,
      note: "matches no sender group",
    });
  });

  it("answer 554 5.7.1 under a reject or tcprefuse policy", () => {
    for (const behaviour of ["reject", "tcprefuse"] as const) {
      const senderGroup = { group: "BAD", policyName: "BLOCKED", policy: policy({ behaviour }) };
      expect(firstRefusal(CONNECT_CHECKS, facts({ senderGroup }))).toMatchObject({
        check: "policy-behaviour",
        reply: SMTP_REPLIES.accessDenied,
      });
    }
  });

  it("answer 421 4.7.0 past maxConnectionsPerClient", () => {
    expect(firstRefusal(CONNECT_CHECKS, facts({ connectionsFromClient: 3 }))).toMatchObject({
      check: "connection-limit",
      reply: SMTP_REPLIES.tooManyConnections,
    });
  });
});
