/**
 * The nginx front: smtpgate as the `auth_http` server of nginx's mail proxy. It maps nginx's request to the
 * decision requests every front makes, asks a Decider, and maps the verdict to nginx's answer headers; it adds no
 * policy. The API mounts it at `GET /v1/nginx/auth/<listener>` (api/http/app.ts).
 *
 *   const nginx = createNginxAuth({ decider, upstreamOf: (listener) => upstreams[listener], log });
 *   const headers = await nginx.answer("submission", (name) => request.headers.get(name) ?? undefined);
 *
 * What each Auth-Method leads to:
 *   none         (the client sent no AUTH: nginx asks at RCPT with smtp_auth none) the certificate decision, as at
 *                STARTTLS; a session with neither AUTH nor an accepted certificate is refused 530 5.7.0
 *   plain, login the AUTH decision, with the client's certificate for certificate profiles
 *   the others   (apop, cram-md5, external) 504 5.5.4: smtpgate never holds the plaintext password they need
 * A verdict's reply goes to nginx as it is (535 5.7.8, 454 4.7.0, 554 5.7.1 + close, ...); no answer from the
 * Decider, or a request that cannot be decided, is 454 4.7.0 and a log line.
 */
import type { Decider, DecisionContext } from "../../contract/decider.ts";
import { SMTP_REPLIES, type SmtpReply } from "../../contract/smtp-replies.ts";
import type { Verdict } from "../../contract/verdict.ts";
import type { Logger } from "../../lib/json-lines.ts";
import { allowed, refused, type AnswerHeaders, type Upstream } from "./answer.ts";
import { decodeMailAuthText, readNginxRequest, type HeaderReader, type NginxRequestFacts } from "./request.ts";

export type { AnswerHeaders, HeaderReader, Upstream };
export { REFUSAL_WAIT_SECONDS } from "./answer.ts";

export interface NginxAuthOptions {
  decider: Decider;
  /** Where nginx hands an allowed session for this listener (its `upstream`); undefined: none configured. */
  upstreamOf(listener: string): Upstream | undefined;
  log: Logger;
}

export interface NginxAuth {
  /** The answer headers for nginx's request `header` on `listener`. Never rejects. */
  answer(listener: string, header: HeaderReader, context?: DecisionContext): Promise<AnswerHeaders>;
}

const PASSWORD_METHODS = new Set(["plain", "login"]);

export function createNginxAuth(options: NginxAuthOptions): NginxAuth {
  const { decider, log } = options;
  const temporaryFailure = (listener: string, context: DecisionContext, problem: string): AnswerHeaders => {
    log({ level: "warn", msg: "nginx auth_http request not decided", listener, requestId: context.requestId, problem });
    return refused(SMTP_REPLIES.authTemporaryFailure);
  };

  return {
    async answer(listener, header, context = {}) {
      const upstream = options.upstreamOf(listener);
      if (!upstream) return temporaryFailure(listener, context, `listener "${listener}" has no upstream`);
      const facts = readNginxRequest(header);
      if ("problem" in facts) return temporaryFailure(listener, context, facts.problem);
      if (facts.protocol !== "smtp")
        return temporaryFailure(listener, context, `Auth-Protocol "${facts.protocol}": smtpgate answers for smtp only`);
      const refusedHere = (reply: SmtpReply, why: string): AnswerHeaders => {
        log({
          level: "info",
          msg: "nginx auth_http refused",
          listener,
          requestId: context.requestId,
          method: facts.method,
          why,
        });
        return refused(reply);
      };

      let verdict: Verdict;
      try {
        if (facts.method === "none") {
          if (!facts.tls) return refusedHere(SMTP_REPLIES.authRequired, "no AUTH and no TLS");
          verdict = await decider.decideTls(
            { listener, client: facts.client, tls: facts.tls, certificate: chainOf(facts) },
            context,
          );
          // No certificate decision yet (none presented, or it maps to no one and AUTH may follow): this session
          // has not authenticated, and nginx asks only once it has sent RCPT.
          if (verdict.verdict === "continue")
            return refusedHere(SMTP_REPLIES.authRequired, `no AUTH (${verdict.reason})`);
        } else if (PASSWORD_METHODS.has(facts.method)) {
          const username = decodeMailAuthText(header("Auth-User") ?? "");
          const password = decodeMailAuthText(header("Auth-Pass") ?? "");
          if (username === null || password === null) return refusedHere(SMTP_REPLIES.badBase64, "not UTF-8");
          verdict = await decider.decideAuth(
            {
              listener,
              client: facts.client,
              tls: facts.tls,
              // nginx names LOGIN "plain" too; both carry a user name and a password.
              mechanism: "PLAIN",
              username,
              password,
              certificate: chainOf(facts),
            },
            context,
          );
        } else return refusedHere(SMTP_REPLIES.unknownMechanism, `Auth-Method "${facts.method}" is not supported`);
      } catch (error) {
        return temporaryFailure(listener, context, `no decision: ${(error as Error).message}`);
      }
      return answerOf(verdict, upstream);
    },
  };
}

function chainOf(facts: NginxRequestFacts): { chain: string[] } | null {
  return facts.certificate === null ? null : { chain: [facts.certificate] };
}

/** The verdict as nginx's answer: its reply as it is, the session handed upstream only on an allow. */
function answerOf(verdict: Verdict, upstream: Upstream): AnswerHeaders {
  if (verdict.verdict === "allow") return allowed(upstream, verdict.identity);
  const reply = verdict.smtp ?? SMTP_REPLIES.authTemporaryFailure;
  return refused(reply, { close: verdict.close, waitSeconds: verdict.retryAfter });
}
