/**
 * RFC 9457 problem details: every non-decision answer of the API (malformed call, bad token, body too large,
 * unknown route) has this shape, and names the offending field where there is one.
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

export interface FieldProblem {
  field: string;
  message: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  requestId?: string;
  errors?: FieldProblem[];
}

const TYPE_BASE = "https://smtpgate.dev/problems/";

export function problem(
  c: Context,
  status: ContentfulStatusCode,
  slug: string,
  title: string,
  detail: string,
  errors?: FieldProblem[],
): Response {
  const body: Problem = {
    type: `${TYPE_BASE}${slug}`,
    title,
    status,
    detail,
    instance: c.req.path,
    ...(c.get("requestId") ? { requestId: c.get("requestId") as string } : {}),
    ...(errors ? { errors } : {}),
  };
  return c.body(JSON.stringify(body), status, { "Content-Type": PROBLEM_CONTENT_TYPE });
}
