# syntax=docker/dockerfile:1
# smtpgate decision API (Node.js runtime). Build from the repository root:
#
#   docker build -f infra/docker/api.Dockerfile -t smtpgate-api .
#   docker run --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
#     -v /etc/smtpgate:/etc/smtpgate:ro -e SMTPGATE_API_TOKEN -e SMTPGATE_LDAP_BIND_PASSWORD -p 8787:8787 smtpgate-api
#
# Runs as the unprivileged "node" user (uid 1000) and writes nothing outside /tmp, so the root file system can be
# read-only. Node runs the TypeScript sources directly (type stripping, Node >= 22.18): there is no build step.

FROM node:24-bookworm-slim AS dependencies
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; none of them needs an install script.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=dependencies /app/node_modules ./node_modules
COPY package.json ./
COPY api ./api
COPY contract ./contract
COPY lib ./lib
USER node
EXPOSE 8787
# Liveness of the process (GET /healthz); readiness (/readyz: directories reachable) is for the orchestrator.
# The slim image has no curl: Node's fetch does the request.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8787/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# --host 0.0.0.0: inside a container the loopback default of api.listen would be unreachable.
ENTRYPOINT ["node", "api/runtime/node/main.ts"]
CMD ["--config", "/etc/smtpgate/smtpgate.yaml", "--host", "0.0.0.0", "--port", "8787"]
