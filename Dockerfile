# syntax=docker/dockerfile:1
# The one llmproxy image: `llmproxy-operator` (the chart's Deployment) and `llmproxy-sidecar`
# (injected into opted-in pods). Built and published by the release pipeline:
#   docker build -t ghcr.io/llmproxy/llmproxy:<version> .
# Runs as 65532 on a read-only root filesystem; nothing is written outside /tmp.
# The release pipeline pins both base images by digest (--build-arg BUILD_IMAGE=...@sha256:...).
ARG BUILD_IMAGE=node:20-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs20-debian12:nonroot

FROM ${BUILD_IMAGE} AS build
WORKDIR /app
ENV npm_config_update_notifier=false
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY crds ./crds
COPY sidecar ./sidecar
COPY operator ./operator
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force
# Both commands as executables on PATH. The runtime image has no shell and no /usr/bin/env, so
# each entry point starts with the runtime's own node.
RUN set -eu; \
    mkdir -p /out/bin; \
    for name in sidecar operator; do \
      file="dist/$name/main.js"; \
      sed -i -e '1{/^#!/d}' "$file"; \
      sed -i -e '1i #!/nodejs/bin/node' "$file"; \
      chmod 0555 "$file"; \
      ln -s "/app/$file" "/out/bin/llmproxy-$name"; \
    done

FROM ${RUNTIME_IMAGE}
WORKDIR /app
ENV NODE_ENV=production
# Owned by root and read-only to the process.
COPY --from=build --chown=0:0 /app/package.json ./package.json
COPY --from=build --chown=0:0 /app/node_modules ./node_modules
COPY --from=build --chown=0:0 /app/dist ./dist
COPY --from=build --chown=0:0 /out/bin/ /usr/local/bin/
USER 65532:65532
ENTRYPOINT []
CMD ["llmproxy-sidecar"]
LABEL org.opencontainers.image.title="llmproxy" \
      org.opencontainers.image.description="llmproxy operator and sidecar: policy for every LLM call a pod makes" \
      org.opencontainers.image.source="https://github.com/llmproxy/llmproxy" \
      org.opencontainers.image.licenses="Apache-2.0"
