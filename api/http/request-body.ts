/** A request's JSON body checked against its schema, or the 400 problem response that says what is wrong. */
import type { Context } from "hono";
import type { z } from "zod";
import { validate, type ValueProblem } from "../../lib/validation/problems.ts";
import { problem, type FieldProblem } from "./problem.ts";

export type Parsed<T> = { ok: true; value: T } | { ok: false; response: Response };

export async function parseBody<S extends z.ZodType>(c: Context, schema: S): Promise<Parsed<z.output<S>>> {
  return parseJson(c, await c.req.text(), schema);
}

export function parseJson<S extends z.ZodType>(c: Context, text: string, schema: S): Parsed<z.output<S>> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, response: malformed(c, [{ field: "(body)", message: "not a JSON document" }]) };
  }
  // A request's values are not quoted back: they may be passwords.
  const checked = validate(schema, json, { showValues: false });
  return checked.ok ? checked : { ok: false, response: malformed(c, checked.problems.map(fieldProblem)) };
}

function fieldProblem(problem: ValueProblem): FieldProblem {
  return { field: problem.path, message: problem.message };
}

export function malformed(c: Context, errors: FieldProblem[]): Response {
  const detail = errors.map((error) => `${error.field}: ${error.message}`).join("; ");
  return problem(c, 400, "malformed-request", "Malformed request", detail, errors);
}
