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
