import { describe, expect, it } from "vitest";
import { SMTP_REPLIES } from "../contract/smtp-replies.ts";
import { firstRefusal, refuse, type Check, type Finding } from "./stage.ts";

type Facts = { value: number };

const CHECKS: readonly Check<Facts>[] = [
  {
    name: "warns-above-1",
    test: (facts) => (facts.value > 1 ? { reply: SMTP_REPLIES.accessDenied, warnOnly: true } : null),
  },
  { name: "refuses-above-2", test: (facts) => (facts.value > 2 ? refuse(SMTP_REPLIES.relayDenied, "too big") : null) },
  { name: "refuses-above-3", test: (facts) => (facts.value > 3 ? refuse(SMTP_REPLIES.authRequired) : null) },
];

describe("firstRefusal", () => {
  it("answers null when every check passes", () => {
    expect(firstRefusal(CHECKS, { value: 0 })).toBeNull();
  });

  it("answers the first refusal in list order, with the check's name and note", () => {
    expect(firstRefusal(CHECKS, { value: 5 })).toEqual({
      check: "refuses-above-2",
      reply: SMTP_REPLIES.relayDenied,
      note: "too big",
    });
  });

  it("hands a warn-only objection to onWarning and goes on to the next check", () => {
    const warnings: Finding[] = [];
    expect(firstRefusal(CHECKS, { value: 2 }, (warning) => warnings.push(warning))).toBeNull();
    expect(warnings).toEqual([{ check: "warns-above-1", reply: SMTP_REPLIES.accessDenied, warnOnly: true }]);
    warnings.length = 0;
    expect(firstRefusal(CHECKS, { value: 3 }, (warning) => warnings.push(warning))?.check).toBe("refuses-above-2");
    expect(warnings.map((warning) => warning.check)).toEqual(["warns-above-1"]);
  });
});
