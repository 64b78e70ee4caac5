import { scrubSecrets } from './scrub-secrets.js';

/** Longest client-sent text a request log line carries per field, characters. */
export const MAX_LOGGED_FIELD = 2048;

/** The request fields a log line shows (Fastify's own `req` serializer's fields). */
export interface LoggedRequest {
  method?: string;
  url?: string;
  version?: string;
  host?: string;
  remoteAddress?: string;
  remotePort?: number;
}

/**
 * pino serializer of `req`, replacing Fastify's own (which Fastify merges under the logger's):
 * the same fields, each client-sent one scrubbed and then cut to `MAX_LOGGED_FIELD` characters
 * with a marker saying how much was dropped. Node accepts a request line and headers up to
 * `--max-http-header-size` (16 KiB), all of it logged at info; the cap bounds what every line
 * costs downstream (the line scrubber, stdout, the log shipper). Scrubbing comes first so a
 * cut can never leave the head of a password whose end (`@`) was cut away.
 * Takes a Fastify request or a bare `IncomingMessage` (anything with a `socket`); any other
 * value logged as `req` (a plain object of fields) is returned as it is.
 */
export function serializeRequest(req: unknown): unknown {
  if (typeof req !== 'object' || req === null || !('socket' in req)) return req;
  const r = req as {
    method?: unknown;
    url?: unknown;
    host?: unknown;
    ip?: unknown;
    headers?: Record<string, unknown>;
    socket?: { remoteAddress?: unknown; remotePort?: unknown };
  };
  const logged: LoggedRequest = {
    method: capped(r.method),
    url: capped(r.url),
    version: capped(r.headers?.['accept-version']),
    host: capped(r.host ?? r.headers?.host),
    remoteAddress: capped(r.ip ?? r.socket?.remoteAddress),
    remotePort: typeof r.socket?.remotePort === 'number' ? r.socket.remotePort : undefined,
  };
  return logged;
}

function capped(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  if (value.length <= MAX_LOGGED_FIELD) return value;
  const scrubbed = scrubSecrets(value);
  if (scrubbed.length <= MAX_LOGGED_FIELD) return scrubbed;
  return `${scrubbed.slice(0, MAX_LOGGED_FIELD)}…[${scrubbed.length - MAX_LOGGED_FIELD} more characters]`;
}
