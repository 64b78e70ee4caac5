import type { ConfigSource } from './merge-layers.js';

/** Query parameters understood in DATABASE_URL, with the postgres key each one sets. */
const URL_PARAMS: Readonly<Record<string, string>> = {
  sslmode: 'sslMode',
  sslrootcert: 'sslRootCert',
  channel_binding: 'channelBinding',
  application_name: 'applicationName',
  host: 'host',
  connect_timeout: 'timeout',
  target_session_attrs: 'targetSessionAttrs',
};

/** scheme, user info (with its "@"), host list, and the rest (path, query, fragment). */
const AUTHORITY = /^([a-z][a-z0-9+.-]*:\/\/)([^@/?#]*@)?([^/?#]*)(.*)$/is;

/**
 * libpq's multi-host form (`h1:5432,h2:5433`), which WHATWG `URL` refuses: split off here, the
 * URL is parsed with the first host, and every host goes to `hosts` as `host:port` (a host
 * without a port gets 5432, libpq's default).
 * Hand-written because pg-connection-string has no multi-host support either.
 */
function splitHosts(text: string): { text: string; hosts: string[] | undefined } {
  const m = AUTHORITY.exec(text);
  if (!m?.[3]?.includes(',')) return { text, hosts: undefined };
  const [, scheme = '', userInfo = '', list, rest = ''] = m;
  const hosts = list
    .split(',')
    .map((entry) => (/:\d+$/.test(entry) && !/^\[[^\]]*$/.test(entry) ? entry : `${entry}:5432`));
  return { text: `${scheme}${userInfo}${hosts[0] ?? ''}${rest}`, hosts };
}

/**
 * Parses a `postgres://` or `postgresql://` URL into `database.postgres` keys: host, port,
 * name, username and password (percent-decoded) and the query parameters `sslmode`,
 * `sslrootcert`, `channel_binding`, `application_name`, `host` (a Unix-socket directory), `connect_timeout`
 * (seconds, as in libpq) and `target_session_attrs`. Several hosts (libpq's
 * `postgres://u:p@h1:5432,h2:5433/db`) set `hosts` (and `host`/`port` to the first). Parts absent from the URL leave lower layers in place, so a URL
 * without a password combines with `DB_PASSWORD_FILE`. An unsupported parameter is an issue
 * rather than silently ignored (it may be a security setting such as libpq's `require_auth`).
 * Issues never echo the URL: it may carry a password.
 */
export function parseDatabaseUrl(text: string, sourceName: string, issues: string[]): ConfigSource {
  const postgres: Record<string, unknown> = {};
  const source: ConfigSource = { name: sourceName, values: { database: { postgres } } };
  let url: URL;
  const { text: single, hosts } = splitHosts(text.trim());
  try {
    url = new URL(single);
  } catch {
    issues.push(`${sourceName}: is not a valid URL (expected postgres://user:password@host:port/database)`);
    return source;
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    issues.push(`${sourceName}: must start with postgres:// or postgresql:// (got ${url.protocol}//)`);
    return source;
  }
  const decode = (part: string, what: string): string | undefined => {
    try {
      return decodeURIComponent(part);
    } catch {
      issues.push(`${sourceName}: the ${what} is not valid percent-encoding`);
      return undefined;
    }
  };
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const set = (key: string, value: unknown) => {
    if (value !== undefined) postgres[key] = value;
  };
  if (host) set('host', decode(host, 'host'));
  if (url.port) set('port', Number(url.port));
  if (url.username) set('username', decode(url.username, 'user name'));
  if (url.password) set('password', decode(url.password, 'password'));
  if (hosts) {
    const decoded = hosts.map((h) => decode(h, 'host'));
    if (decoded.some((h) => !h || h.startsWith(':')))
      issues.push(`${sourceName}: every host of a multi-host URL needs a name`);
    else set('hosts', decoded);
  }
  const name = url.pathname.replace(/^\//, '');
  if (name) {
    const decoded = decode(name, 'database name');
    if (decoded?.includes('/')) issues.push(`${sourceName}: the database name must not contain "/"`);
    else set('name', decoded);
  }
  for (const [param, value] of url.searchParams) {
    const key = URL_PARAMS[param];
    if (!key) {
      issues.push(
        `${sourceName}: unsupported query parameter "${param}" (supported: ${Object.keys(URL_PARAMS).join(', ')})`,
      );
    } else if (key === 'timeout') {
      postgres.timeout = /^\d+$/.test(value) ? Number(value) * 1_000 : value;
    } else {
      postgres[key] = value;
    }
  }
  return source;
}
