import pg from 'pg';
import pino from 'pino';
import { PostgresDatabase } from '../../src/db/postgres-database.js';
import { TcpProxy } from './tcp-proxy.js';
import type { TestDatabase } from './test-database.js';

/** A database reached through a TCP proxy that can cut COMMIT, plus a direct line to check rows. */
export interface ProxiedLedger {
  proxy: TcpProxy;
  /** Pool of 3 connections, all through the proxy. */
  pdb: PostgresDatabase;
  /** Rows of `ledger` with this id, counted on a connection that bypasses the proxy. */
  rowsWithId(id: number): Promise<number>;
  /** Closes the pool, the direct connection and the proxy. */
  close(): Promise<void>;
}

/**
 * Mocha helper for the lost-COMMIT suites: in `before`, starts a proxy in front of the suite's
 * database, opens a pool through it and a direct client past it, and creates
 * `ledger (id int primary key, note text)`. The suite's own `after` calls `close()`.
 */
export function useProxiedLedger(db: () => TestDatabase): () => ProxiedLedger {
  let current: ProxiedLedger | undefined;
  before(async () => {
    const cfg = db().config();
    const proxy = await TcpProxy.start({ host: cfg.host, port: cfg.port });
    const pdb = new PostgresDatabase(
      db().config({ host: '127.0.0.1', port: proxy.port, maxOpenConns: 3 }),
      pino({ level: 'silent' }),
    );
    const direct = new pg.Client({ connectionString: db().url });
    direct.on('error', () => {}); // pg#2762: an idle client's error must not crash the run
    await direct.connect();
    await direct.query('create table ledger (id int primary key, note text)');
    current = {
      proxy,
      pdb,
      rowsWithId: async (id) => {
        const { rows } = await direct.query<{ n: number }>(
          'select count(*)::int as n from ledger where id = $1',
          [id],
        );
        return rows[0]!.n;
      },
      close: async () => {
        await pdb.close();
        await direct.end();
        await proxy.close();
      },
    };
  });
  return () => {
    if (!current) throw new Error('useProxiedLedger(): available only inside hooks and tests');
    return current;
  };
}
