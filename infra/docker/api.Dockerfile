# syntax=docker/dockerfile:1
# smtpgate decision API (Node.js runtime). Build from the repository root:
#
#   docker build -f infra/docker/api.Dockerfile -t smtpgate-api .
#   docker run --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
#     -v /etc/smtpgate:/etc/smtpgate:ro -e SMTPGATE_API_TOKEN -e SMTPGATE_LDAP_BIND_PASSWORD -p 8787:8787 smtpgate-api
#
# Runs as the unprivileged "node" user (uid 1000) and writes nothing outside /tmp, so the root file system can be
# read-only. It runs the built package (compiled JavaScript, as `npm pack` makes it) with production dependencies
# from the lock file only: the same files `npm install smtpgate` installs, started through its `smtpgate` command.

# Build: compile to dist/node/ and pack the tarball (npm pack runs prepack, which runs npm run build).
FROM node:24-bookworm-slim AS package
WORKDIR /src
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY bin ./bin
COPY api ./api
COPY contract ./contract
COPY lib ./lib
COPY mail-flow ./mail-flow
COPY edge-relay ./edge-relay
COPY cli ./cli
COPY infra/config ./infra/config
COPY infra/systemd ./infra/systemd
RUN npm pack --pack-destination /tmp && mv /tmp/smtpgate-*.tgz /tmp/smtpgate.tgz

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=package /tmp/smtpgate.tgz /tmp/smtpgate.tgz
# The tarball's files, then its production dependencies exactly as locked (none needs an install script).
COPY package-lock.json ./
RUN tar -xzf /tmp/smtpgate.tgz --strip-components=1 -C /app && rm /tmp/smtpgate.tgz \
  && npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
USER node
EXPOSE 8787
# Liveness of the process (GET /healthz); readiness (/readyz: directories reachable) is for the orchestrator.
# The slim image has no curl: Node's fetch does the request.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8787/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# --host 0.0.0.0: inside a container the loopback default of api.listen would be unreachable.
ENTRYPOINT ["node", "bin/smtpgate.js", "api"]
CMD ["--config", "/etc/smtpgate/smtpgate.yaml", "--host", "0.0.0.0", "--port", "8787"]
