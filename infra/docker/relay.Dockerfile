# syntax=docker/dockerfile:1
# smtpgate edge relay (SMTP front, Node.js). Build from the repository root:
#
#   docker build -f infra/docker/relay.Dockerfile -t smtpgate-relay .
#   docker run --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
#     -v /etc/smtpgate:/etc/smtpgate:ro -e SMTPGATE_API_TOKEN -p 25:25 -p 587:587 -p 465:465 smtpgate-relay
#
# Runs as the unprivileged "node" user (uid 1000). It listens on 25, 587 and 465 without root or
# CAP_NET_BIND_SERVICE because Docker (>= 20.10) starts containers with net.ipv4.ip_unprivileged_port_start=0;
# Kubernetes sets the same sysctl in the pod (infra/kubernetes/relay.yaml). Writes nothing outside /tmp: the relay
# stores no mail (it answers 250 only after the upstream accepted). Like the API image, it runs the built package.

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
EXPOSE 25 587 465 8025
# listen.health in relay.yaml must be 8025 for this check (GET /healthz).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8025/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM: the relay stops accepting and lets sessions finish (limits.shutdownGraceMs).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/smtpgate.js", "relay"]
CMD ["--config", "/etc/smtpgate/relay.yaml"]
