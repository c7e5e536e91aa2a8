# syntax=docker/dockerfile:1
# farad image: the compiled service and example apps on node:24-slim (Node.js 24, an LTS line),
# running as uid 10001.
#
#   docker build -t farad:0.1.0 .
#   docker run --rm -p 8080:8080 farad:0.1.0                      # the Voter demo, embedded log
#   docker run --rm -p 8080:8080 farad:0.1.0 run --app examples/bank   # a TypeScript app, through tsx
#
# Your own app: build an image FROM this one that copies it under /app/apps/<name>/ (see
# docs/deploy.md); there `import { defineApp } from 'farad'` resolves to this package (a package
# self-reference). `farad run --app` loads compiled .js apps and TypeScript (.ts) apps alike
# (tsx is a production dependency; it caches compiled files in /tmp).
ARG NODE_IMAGE=node:24-slim

# ---- build: dev dependencies + tsc ---------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the package's `prepare` script compiles, and the sources are not copied yet.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY examples ./examples
COPY config ./config
RUN npm run build

# ---- runtime: production dependencies only ---------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    FARAD_HTTP_HOST=0.0.0.0 \
    FARAD_HTTP_PORT=8080 \
    FARAD_DATA_DIR=/data
WORKDIR /app
RUN groupadd --system --gid 10001 farad \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin farad \
 && mkdir -p /data \
 && chown 10001:10001 /data
COPY package.json package-lock.json ./
# npm (11) leaves its V8 compile cache in /tmp/node-compile-cache, owned by root: remove it, so
# /tmp is empty for uid 10001 (a tmpfs that copies the image's /tmp up would carry it along).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force \
 && rm -rf /tmp/node-compile-cache
COPY --from=build /app/dist ./dist
# config/ holds the example apps' Avro schemas (found by walking up from dist/examples/<app>).
COPY config ./config
# The TypeScript sources of the examples, and of farad itself which they import
# (../../src/index.js), so `--app examples/<name>` runs them through tsx as well.
COPY examples ./examples
COPY src ./src
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["run", "--app", "dist/examples/voter"]
