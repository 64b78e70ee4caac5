/**
 * The API's scopes, each a permission a bearer token carries (OAuth 2.0 `scope`):
 * `users:read` for `GET /users/:id` and `GET /users`, `users:write` for `POST /users` and
 * `PATCH /users/:id`, `users:admin` for `DELETE /users/:id` and `POST /users/import`. A scope
 * does not imply another: a token that may delete and read carries both.
 */
export const SCOPES = ['users:read', 'users:write', 'users:admin'] as const;
/** One of `SCOPES`. */
export type Scope = (typeof SCOPES)[number];

/** Most scopes read from one token; more is a malformed token, not a larger grant. */
const MAX_SCOPES = 100;

/**
 * The scopes a verified token's claims grant: `scope` (RFC 8693 / 9068: one string,
 * space-separated) and `scp` (a string or an array of strings, as Azure AD and Okta send it),
 * together, without duplicates. A claim of any other type grants nothing.
 */
export function tokenScopes(claims: Readonly<Record<string, unknown>>): string[] {
  const found = new Set<string>();
  const add = (value: unknown): void => {
    if (typeof value === 'string') {
      for (const scope of value.split(' ')) if (scope !== '' && found.size < MAX_SCOPES) found.add(scope);
    } else if (Array.isArray(value)) {
      for (const item of value as unknown[]) if (typeof item === 'string') add(item);
    }
  };
  add(claims['scope']);
  add(claims['scp']);
  return [...found];
}
