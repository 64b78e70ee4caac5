import type { Scope } from './scopes.js';

/**
 * Who made a request, from a verified bearer token: `request.user` in mode `jwt` (undefined in
 * mode `none`, where every caller is anonymous).
 */
export interface AuthUser {
  /** The token's `sub` claim (required): the audit trail's actor, the import slots' client. */
  sub: string;
  /** The scopes of its `scope` and `scp` claims (see `tokenScopes`). */
  scopes: readonly string[];
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified caller (mode `jwt`); undefined in mode `none` and on public routes. */
    user: AuthUser | undefined;
  }
  interface FastifyContextConfig {
    /**
     * The scope a bearer token needs to call this route (`registerAuth`): one of `SCOPES`, or a
     * service's own (`orders:read`).
     */
    scope?: Scope | (string & {});
    /** Open to everyone, token or not (`/healthz`, `/readyz`). */
    public?: boolean;
  }
}
