# syntax=docker/dockerfile:1
# Multi-stage build of the service. Not built in this repository's CI (no Docker engine there);
# kept small and standard. Targets:
#   docker build -t pg-data-layer .                      -> runtime image (the default, last stage)
#   docker build -t pg-data-layer-migrate --target migrate .  -> one-shot `knex migrate:latest` job

# ---- build: full dependencies, TypeScript compiled to dist/ -----------------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- migrate: the stock knex CLI over the TypeScript migrations (needs tsx, a dev dependency) --
# Production does not migrate on start (database.migrateOnStart is off there): run this image as a
# Job / init container / compose one-shot before rolling out the app.
FROM build AS migrate
COPY knexfile.ts ./
COPY migrations ./migrations
COPY seeds ./seeds
COPY config ./config
ENV NODE_ENV=production APP_ENV=production NODE_OPTIONS="--import tsx"
USER node
CMD ["npx", "knex", "migrate:latest"]

# ---- runtime: production dependencies only, non-root ------------------------------------------
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production APP_ENV=production SERVER_HOST=0.0.0.0 SERVER_PORT=8080
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY config ./config
# Read (never run) by /health's migration status: applied vs. files on disk.
COPY migrations ./migrations
USER node
EXPOSE 8080
# Liveness only (touches no database); orchestrators should use /readyz for traffic.
# The slim image has no curl: Node's fetch does the probe.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node (not npm) as PID 1's child-free entry point, so SIGTERM reaches the service directly.
CMD ["node", "dist/main.js"]
