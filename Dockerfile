# syntax=docker/dockerfile:1
#
# zkgate container image.
#
#   docker build -t zkgate .
#   docker run --rm -p 127.0.0.1:8080:8080 -p 127.0.0.1:9090:9090 -e ZKGATE_ZOOKEEPER=zk1:2181,zk2:2181,zk3:2181 -e ZKGATE_ALLOW_UNAUTHENTICATED_PUBLIC_BIND=1 zkgate
#
# That line is dev mode: the gateway must listen on 0.0.0.0 inside the container, and without API
# keys zkgate refuses a non-loopback address (exit 2) unless ZKGATE_ALLOW_UNAUTHENTICATED_PUBLIC_BIND=1
# says so; the ports are then published on the host's loopback only. For anything shared, mount a
# config with API keys (README, "Deployment") and drop the flag:
#   docker run --rm -p 8080:8080 -p 9090:9090 -v "$PWD/zkgate.yaml:/etc/zkgate.yaml:ro" -e ZKGATE_CONFIG=/etc/zkgate.yaml zkgate
#
# ZKGATE_ZOOKEEPER MUST be set (or zookeeper.connect in the config): without it zkgate starts an
# embedded ZooKeeper, which needs Java and the Debian `zookeeper` package -- neither is in this
# slim image, so the gateway would print "zkgate: no ZooKeeper configured and the embedded one
# needs Java ..." and exit with code 2.
# test/integration/container-image.test.ts builds this image's file set from exactly what this
# file and .dockerignore select, without Docker, and runs the README tour and the run line above.
# See compose.yaml for a 3-node ensemble plus two gateways.

############################################################################################
# Compile stage: TypeScript needs the packages' JavaScript and type declarations, not the native
# addon, so no install script runs here. Only src/ is compiled (tsconfig.build.json): tests,
# benchmarks and examples are not in the image (see .dockerignore).
############################################################################################
FROM node:20-bookworm AS compile

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build:src

############################################################################################
# Dependencies stage: the production dependencies only, with a compiler toolchain for the native
# `zookeeper` addon, which node-gyp builds from the ZooKeeper C client sources bundled in the npm
# package (there are no linux prebuilds).
############################################################################################
FROM node:20-bookworm AS deps

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ patch \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Build the ZooKeeper C client without Cyrus SASL even if sasl headers happen to be present:
# the addon links only the static libzookeeper_st.a (not libsasl2), so a SASL-enabled build
# would leave sasl_* symbols unresolved, and the slim image has no libsasl2 anyway. autoconf
# honours this preset cache variable. OpenSSL support is fine: the addon resolves its SSL_*
# symbols from the node binary, which exports its bundled OpenSSL.
ENV ac_cv_header_sasl_sasl_h=no
# swagger-ui-dist pulls in @scarf/scarf, whose postinstall phones home; npm 10 runs it.
ENV SCARF_ANALYTICS=false

COPY package.json package-lock.json ./
# npm ci's postinstall patches the `zookeeper` binding and rebuilds its addon (patches/README.md).
COPY patches ./patches
# Drop the C client sources/objects left over by the addon build (the addon itself is
# node_modules/zookeeper/build/Release/zookeeper.node), and fail the build now -- not at run
# time -- if the addon cannot load or needs a shared library the slim image lacks.
RUN npm ci --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/zookeeper/deps/zookeeper-client-c node_modules/zookeeper/build/Release/obj.target \
 && node -e "require('zookeeper')" \
 && ! ldd node_modules/zookeeper/build/Release/zookeeper.node | grep -E 'not found|libsasl|libssl|libcrypto'

############################################################################################
# Runtime stage.
############################################################################################
FROM node:20-bookworm-slim

ENV NODE_ENV=production
WORKDIR /app

# Files stay root-owned (read-only for the service user).
COPY --from=compile /app/package.json ./package.json
COPY --from=deps /app/node_modules ./node_modules
COPY --from=compile /app/dist/src ./dist/src
COPY --from=compile /app/proto ./proto
COPY --from=compile /app/openapi.yaml ./openapi.yaml
# docs/errors.md is served at /docs/errors.
COPY --from=compile /app/docs ./docs
# ui/ is the web console at /ui.
COPY --from=compile /app/ui ./ui

# The node image's unprivileged user (uid 1000).
USER node

# 8080: REST + WebSocket (+ /healthz, /readyz, /metrics, /docs); 9090: gRPC.
EXPOSE 8080 9090

# Liveness only (/readyz also reflects the ZooKeeper session). Follows ZKGATE_HTTP_PORT if set.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.ZKGATE_HTTP_PORT || 8080) + '/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

ENTRYPOINT ["node", "dist/src/cli/index.js"]
CMD ["serve", "--bind", "0.0.0.0"]
