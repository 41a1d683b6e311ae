/**
 * The OpenAPI 3.1 document of the decision API (`GET /openapi.json`), built from the contract's zod schemas: the
 * ones that validate the requests and the one the verdict type comes from, so the document cannot drift from what
 * the code accepts and answers.
 */
import { z } from "zod";
import {
  authRequestSchema,
  certificateFactsRequestSchema,
  identityRequestSchema,
  tlsRequestSchema,
} from "../../contract/requests.ts";
import { SMTP_REPLIES } from "../../contract/smtp-replies.ts";
import { verdictSchema } from "../../contract/verdict.ts";

const problemSchema = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  instance: z.string().optional(),
  requestId: z.string().optional(),
  errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
});

const json = (schema: z.ZodType) =>
  z.toJSONSchema(schema, { io: "input", unrepresentable: "any", target: "draft-2020-12" });

export function openApiDocument(): Record<string, unknown> {
  const problem = {
    description: "RFC 9457 problem details",
    content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
  };
  const decision = (summary: string, request: string) => ({
    summary,
    security: [{ bearer: [] }],
    requestBody: {
      required: true,
      content: { "application/json": { schema: { $ref: `#/components/schemas/${request}` } } },
    },
    responses: {
      "200": {
        description: "The verdict (always 200 for a well-formed call)",
        content: { "application/json": { schema: { $ref: "#/components/schemas/Verdict" } } },
      },
      "400": { ...problem, description: "Malformed call; errors[].field names the field" },
      "401": { ...problem, description: "Missing or wrong bearer token" },
      "413": { ...problem, description: "Body larger than api.maxBodyBytes" },
    },
  });
  return {
    openapi: "3.1.0",
    info: {
      title: "smtpgate decision API",
      version: "1",
      description: `SMTP authentication decisions by client certificate and LDAP. SMTP replies used: ${Object.values(
        SMTP_REPLIES,
      )
        .map((reply) => `${reply.code} ${reply.enhanced}`)
        .filter((reply, index, all) => all.indexOf(reply) === index)
        .join(", ")}.`,
    },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      schemas: {
        TlsRequest: json(tlsRequestSchema),
        AuthRequest: json(authRequestSchema),
        CertificateFactsRequest: json(certificateFactsRequestSchema),
        IdentityRequest: json(identityRequestSchema),
        Verdict: json(verdictSchema),
        Problem: json(problemSchema),
      },
    },
    paths: {
      "/v1/decide/tls": {
        post: decision("At STARTTLS: judge the client certificate chain (or its absence)", "TlsRequest"),
      },
      "/v1/decide/auth": { post: decision("At AUTH: judge PLAIN/LOGIN credentials", "AuthRequest") },
      "/v1/decide/certificate-facts": {
        post: decision(
          "A client certificate an MTA verified, known by its fingerprints and names (no chain, no revocation check)",
          "CertificateFactsRequest",
        ),
      },
      "/v1/decide/identity": {
        post: decision(
          "A login an MTA authenticated: the allowance query and the identity's addresses",
          "IdentityRequest",
        ),
      },
      "/v1/listeners/{name}": {
        get: {
          summary: "A listener's host access table, mail-flow policies and accepted domains, for relays",
          security: [{ bearer: [] }],
          parameters: [{ name: "name", in: "path", required: true, schema: { type: "string" } }],
          responses: {
            "200": { description: "The listener policy (ETag; 304 to a matching If-None-Match)" },
            "304": { description: "Not modified" },
            "404": problem,
          },
        },
      },
      "/v1/nginx/auth/{listener}": {
        get: {
          summary:
            "nginx's mail auth_http protocol (docs/integrations/nginx.md): facts in Auth-* request headers, the decision in Auth-Status, Auth-Server, Auth-Port, Auth-User, Auth-Error-Code and Auth-Wait",
          security: [{ bearer: [] }],
          parameters: [{ name: "listener", in: "path", required: true, schema: { type: "string" } }],
          responses: { "200": { description: "Always, with the answer in the headers and no body" } },
        },
      },
      "/v1/ping": {
        get: {
          summary: "Trivial authenticated answer",
          security: [{ bearer: [] }],
          responses: { "200": { description: '{"ok":true}' } },
        },
      },
      "/v1/cache": {
        get: {
          summary: "Decision cache statistics per profile",
          security: [{ bearer: [] }],
          responses: { "200": { description: "Statistics" } },
        },
      },
      "/v1/cache/flush": {
        post: {
          summary: "Empty one profile's decision cache, or all",
          security: [{ bearer: [] }],
          responses: { "200": { description: "How many entries were dropped" }, "400": problem },
        },
      },
      "/metrics": {
        get: {
          summary: "Prometheus text format 0.0.4 (API token or a metrics token)",
          security: [{ bearer: [] }],
          responses: { "200": { description: "Metrics" } },
        },
      },
      "/healthz": { get: { summary: "The process is up", responses: { "200": { description: '{"status":"ok"}' } } } },
      "/readyz": {
        get: {
          summary: "Every directory answers and every CRL source holds a CRL",
          responses: { "200": { description: "ready" }, "503": { description: "not ready, with details" } },
        },
      },
      "/openapi.json": { get: { summary: "This document", responses: { "200": { description: "OpenAPI 3.1" } } } },
    },
  };
}
