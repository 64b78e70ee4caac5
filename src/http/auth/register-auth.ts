import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import type { AuthConfig } from '../../config/app-config.js';
import type { Logger } from '../../observability/logger.js';
import { AuthenticationError, AuthUnavailableError, InsufficientScopeError } from './auth-errors.js';
import type {} from './auth-user.js'; // request.user and the route config's scope/public (declaration merging)
import { createJwtVerifier, type JwtVerifier } from './jwt-verifier.js';

/** Collaborators of {@link registerAuth}. */
export interface RegisterAuthOptions {
  /** Security events go to its child `{ component: 'security' }`. */
  logger: Logger;
  /** The config profile: mode `none` is said at warn in every profile but development and test. Default `production`. */
  profile?: string;
  /** A verifier to use instead of one built from the config (tests, a custom key source). */
  verifier?: JwtVerifier;
}

/** `Authorization: Bearer <token>` (RFC 6750 b64token); one pattern without nested repetition, linear. */
const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

/**
 * Installs authentication and scope checks on `app` (any Fastify instance), for the routes
 * of `app` and its child scopes; call it before registering them. `authPlugin` is the same as
 * a Fastify plugin.
 *
 * Mode `jwt`, deny by default: an `onRequest` hook (before any body is read) lets a route
 * through only when its config marks it `public: true`, or when the request carries a valid
 * bearer token (`createJwtVerifier`) whose scopes include the route's `config.scope`. A route
 * with neither is closed to every caller (403), and logged at warn when it is registered. An
 * unknown URL answers 401 without a valid token, 404 with one. Failures go to the app's error
 * handler as `AuthenticationError` (401, `WWW-Authenticate: Bearer`), `InsufficientScopeError`
 * (403) or `AuthUnavailableError` (503). `request.user` carries the verified `{ sub, scopes }`.
 *
 * Mode `none`: no check at all; `request.user` stays undefined. In any profile but
 * development and test that is said at start, at warn.
 *
 * Both modes log, on the security logger (`component: 'security'`): every authentication
 * failure and scope refusal (`event: 'auth_failed' | 'scope_refused'`, the reason, method and
 * route, never the token), and every call of a `users:admin` write route that was let through
 * (`event: 'admin_action'`, with the caller's `sub` and the status code; not the GETs).
 *
 * @throws ConfigError (before anything is installed) when mode `jwt` has no usable key: see
 *   `createJwtVerifier`.
 *
 * @example
 * ```ts
 * const app = Fastify();
 * registerAuth(app, config.server.auth, { logger, profile: config.profile });
 * app.get('/things', { config: { scope: 'users:read' } }, async (request) => list(request.user?.sub));
 * app.get('/ping', { config: { public: true } }, async () => 'pong');
 * ```
 */
export function registerAuth(app: FastifyInstance, auth: AuthConfig, opts: RegisterAuthOptions): void {
  const profile = opts.profile ?? 'production';
  const security = opts.logger.child({ component: 'security' });
  const verifier = auth.mode === 'jwt' ? (opts.verifier ?? createJwtVerifier(auth.jwt)) : undefined;
  if (!verifier && profile !== 'development' && profile !== 'test') {
    security.warn(
      { event: 'auth_disabled', profile },
      'authentication is off (server.auth.mode none): every route is open to anyone who can reach it',
    );
  }
  app.decorateRequest('user', undefined);
  app.addHook('onRoute', (route: RouteOptions) => {
    const config = route.config;
    // Admin actions are the writes of users:admin (a scrape of /metrics is no action).
    if (config?.scope === 'users:admin' && !isRead(route.method))
      route.onResponse = [...hooksOf(route.onResponse), logAdminAction];
    if (verifier && !config?.scope && !config?.public)
      security.warn(
        { method: route.method, route: route.url },
        'route declares no scope: it is closed to every caller',
      );
  });
  function logAdminAction(request: FastifyRequest, reply: FastifyReply, done: () => void): void {
    // A refused call is already logged as auth_failed / scope_refused.
    if (reply.statusCode !== 401 && reply.statusCode !== 403)
      security.info(
        {
          event: 'admin_action',
          sub: request.user?.sub ?? null,
          ...where(request),
          statusCode: reply.statusCode,
        },
        'admin action',
      );
    done();
  }
  if (!verifier) return;
  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config;
    if (config.public === true) return;
    try {
      request.user = await verifier.verify(bearerToken(request.headers.authorization));
    } catch (err) {
      if (err instanceof AuthenticationError)
        security.warn(
          { event: 'auth_failed', reason: err.reason, ...where(request) },
          'authentication failed',
        );
      else if (err instanceof AuthUnavailableError)
        security.error(
          { event: 'auth_unavailable', err: err.cause, ...where(request) },
          'cannot fetch the token keys',
        );
      throw err;
    }
    if (request.is404) return; // authenticated: the not-found handler answers
    if (config.scope !== undefined && request.user.scopes.includes(config.scope)) return;
    security.warn(
      { event: 'scope_refused', sub: request.user.sub, scope: config.scope ?? null, ...where(request) },
      'scope refused',
    );
    throw new InsufficientScopeError(config.scope);
  });
}

/**
 * `registerAuth` as a Fastify plugin (fastify-plugin: its hooks and the `request.user`
 * decorator reach the scope it is registered in): `await app.register(authPlugin, { auth, logger })`.
 * @throws ConfigError when mode `jwt` has no usable key.
 */
export const authPlugin = fastifyPlugin(
  (app: FastifyInstance, opts: RegisterAuthOptions & { auth: AuthConfig }, done: () => void) => {
    registerAuth(app, opts.auth, opts);
    done();
  },
  { name: 'pg-data-layer-auth', fastify: '5.x' },
);

function bearerToken(header: string | undefined): string {
  if (header === undefined) throw new AuthenticationError('missing_token');
  const token = BEARER.exec(header)?.[1];
  // Another scheme (Basic, ...) is no bearer token; a Bearer header that does not parse is malformed.
  if (token === undefined)
    throw new AuthenticationError(/^bearer\b/i.test(header) ? 'malformed_token' : 'missing_token');
  return token;
}

/** The route pattern, not the URL: a URL's query string may carry anything. */
function where(request: FastifyRequest): { method: string; route: string | undefined; reqId: string } {
  return { method: request.method, route: request.routeOptions.url, reqId: String(request.id) };
}

function isRead(method: string | string[]): boolean {
  return [method].flat().every((m) => m === 'GET' || m === 'HEAD');
}

function hooksOf<T>(hooks: T | T[] | undefined): T[] {
  if (hooks === undefined) return [];
  return Array.isArray(hooks) ? hooks : [hooks];
}
