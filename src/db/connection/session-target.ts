import type { PostgresConfig, TargetSessionAttrs } from '../../config/app-config.js';
import { parseHostPort, type HostPort } from '../../config/host-port.js';

/** The servers a new connection tries, in order: `hosts`, else `host`/`port` alone. */
export function candidateHosts(cfg: Pick<PostgresConfig, 'host' | 'port' | 'hosts'>): HostPort[] {
  const hosts = cfg.hosts ?? [];
  return hosts.length > 0 ? hosts.map(parseHostPort) : [{ host: cfg.host, port: cfg.port }];
}

/** The passes of a connect, as libpq makes them: `prefer-standby` looks for a standby first, then takes any. */
export function connectPasses(attrs: TargetSessionAttrs): readonly TargetSessionAttrs[] {
  return attrs === 'prefer-standby' ? ['standby', 'any'] : [attrs];
}

/** What a session says about itself: ParameterStatus values the server reported (PG 14+ reports both). */
export type ReportedParameters = ReadonlyMap<string, string>;

/** A session that can answer one query (a pg Client). */
export interface QueryableSession {
  query(sql: string): Promise<{ rows: Array<Record<string, unknown>> }>;
}

/**
 * Whether a session matches `mode`, with libpq's checks: `read-write`/`read-only` look at
 * `default_transaction_read_only` and `in_hot_standby` as reported at startup (PostgreSQL 14+),
 * else ask `show transaction_read_only`; `primary`/`standby` look at `in_hot_standby`, else ask
 * `pg_is_in_recovery()`. `any` (and `prefer-standby`'s second pass) matches every session
 * without a round trip; so do the others on PostgreSQL 14+.
 */
export async function sessionMatches(
  mode: TargetSessionAttrs,
  reported: ReportedParameters,
  session: QueryableSession,
): Promise<boolean> {
  const known = stillMatches(mode, reported);
  if (known !== undefined) return known;
  // Not reported (PostgreSQL before 14): ask, as libpq does.
  if (mode === 'read-write' || mode === 'read-only') {
    const { rows } = await session.query('show transaction_read_only');
    return (rows[0]?.transaction_read_only === 'on') === (mode === 'read-only');
  }
  const { rows } = await session.query('select pg_is_in_recovery() as standby');
  return (rows[0]?.standby === true) === (mode === 'standby');
}

/**
 * Whether a session that matched `mode` at connect still does, from reported parameters alone
 * (a standby promoted, a primary switched to `default_transaction_read_only`); undefined when
 * the reports do not tell.
 */
export function stillMatches(mode: TargetSessionAttrs, reported: ReportedParameters): boolean | undefined {
  switch (mode) {
    case 'any':
    case 'prefer-standby':
      return true;
    case 'read-write':
    case 'read-only': {
      const readOnly = readOnlyFromReport(reported);
      return readOnly === undefined ? undefined : readOnly === (mode === 'read-only');
    }
    case 'primary':
    case 'standby': {
      const standby = standbyFromReport(reported);
      return standby === undefined ? undefined : standby === (mode === 'standby');
    }
  }
}

function readOnlyFromReport(reported: ReportedParameters): boolean | undefined {
  const dtro = reported.get('default_transaction_read_only');
  const hot = reported.get('in_hot_standby');
  if (dtro === undefined || hot === undefined) return undefined;
  return dtro === 'on' || hot === 'on';
}

function standbyFromReport(reported: ReportedParameters): boolean | undefined {
  const hot = reported.get('in_hot_standby');
  return hot === undefined ? undefined : hot === 'on';
}

/** What a session that matched none of the hosts is told: names the target, never a secret. */
export function noMatchingHostError(
  attrs: TargetSessionAttrs,
  tried: ReadonlyArray<{ host: string; outcome: string }>,
): Error {
  const detail = tried.map((t) => `${t.host}: ${t.outcome}`).join('; ');
  return Object.assign(new Error(`No host matched targetSessionAttrs=${attrs} (${detail}).`), {
    code: 'NO_MATCHING_HOST',
    targetSessionAttrs: attrs,
  });
}
