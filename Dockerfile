# syntax=docker/dockerfile:1
#
# zkgate container image.
#
#   docker build -t zkgate .
#   docker run --rm -p 8080:8080 -p 9090:9090 -e ZKGATE_ZOOKEEPER=zk1:2181,zk2:2181,zk3:2181 zkgate
#
# ZKGATE_ZOOKEEPER MUST be set (or --zookeeper passed): without it zkgate starts an embedded
# ZooKeeper, which needs Java and the Debian `zookeeper` package -- neither is in this slim
# image, so the gateway would print "zkgate: no ZooKeeper configured and the embedded one
# needs Java ..." and exit with code 2.
# See compose.yaml for a 3-node ensemble plus two gateways.

############################################################################################
# Build stage: full Debian image with a compiler toolchain for the native `zookeeper` addon,
# which node-gyp builds from the ZooKeeper C client sources bundled in the npm package
# (there are no linux prebuilds).
############################################################################################
FROM node:20-bookworm AS build

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
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

# Dependencies first, for layer caching.
COPY package.json package-lock.json ./
RUN npm ci

COPY . .
# Compile, drop dev dependencies, drop the C client sources/objects left over by the addon
# build (the addon itself is node_modules/zookeeper/build/Release/zookeeper.node), and fail
# the build now -- not at run time -- if the addon cannot load or needs a shared library the
# slim image lacks.
RUN npm run build \
 && npm prune --omit=dev \
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
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/proto ./proto
COPY --from=build /app/openapi.yaml ./openapi.yaml
# docs/errors.md is served at /docs/errors.
COPY --from=build /app/docs ./docs

# The node image's unprivileged user (uid 1000).
USER node

# 8080: REST + WebSocket (+ /healthz, /readyz, /metrics, /docs); 9090: gRPC.
EXPOSE 8080 9090

# Liveness only (/readyz also reflects the ZooKeeper session). Follows ZKGATE_HTTP_PORT if set.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.ZKGATE_HTTP_PORT || 8080) + '/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

ENTRYPOINT ["node", "dist/src/cli/index.js"]
CMD ["serve", "--bind", "0.0.0.0"]
