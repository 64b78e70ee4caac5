import knexFactory, { type Knex } from 'knex';
import { Kysely, PostgresDialect, type Generated } from 'kysely';
import { Model } from 'objection';
import pg from 'pg';
import pgPromise from 'pg-promise';
import postgres from 'postgres';
import { PostgresDatabase } from '../src/db/index.js';
import { UserRepository } from '../src/users/user-repository.js';
import { benchConfig } from './bench-setup.js';

type Logger = ConstructorParameters<typeof PostgresDatabase>[1];

/** The users table as kysely sees it. */
interface UsersTable {
  id: Generated<string>;
  email: string;
  name: string;
  status: string;
  version: Generated<number>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  deleted_at: Date | null;
}

export interface BenchDb {
  users: UsersTable;
  bench_accounts: { id: number; balance: number };
}

/** Stock objection models (no jsonSchema, no hooks) on the stock knex. */
export class BenchUser extends Model {
  static override tableName = 'users';
  id!: string;
  email!: string;
  name!: string;
  status!: string;
  version!: number;
  updated_at!: string;
}

export class BenchAccount extends Model {
  static override tableName = 'bench_accounts';
  id!: number;
  balance!: number;
}

type PgPromise = ReturnType<typeof pgPromise>;

/** Every stack's client, each with its own pool of `pool` connections to the same database. */
export interface StackClients {
  rawPool: pg.Pool;
  knex: Knex;
  /** The objection models bound to `knex`. */
  User: typeof BenchUser;
  Account: typeof BenchAccount;
  kysely: Kysely<BenchDb>;
  /** postgres.js with its defaults (prepared statements on). */
  sql: postgres.Sql;
  pgp: PgPromise;
  pgpDb: ReturnType<PgPromise>;
  db: PostgresDatabase;
  repo: UserRepository;
}

/**
 * Opens every stack with its stock settings except the pool size: pg.Pool, knex (objection on
 * it), kysely on its own pg.Pool, postgres.js, pg-promise, and this product's PostgresDatabase
 * with a UserRepository (prepared statements on: the default).
 */
export async function openStacks(url: string, pool: number, logger: Logger): Promise<StackClients> {
  const rawPool = new pg.Pool({ connectionString: url, max: pool });
  // pg#2762: without a listener an idle client's error (the server stopping) crashes the process.
  rawPool.on('error', () => {});
  const kyselyPool = new pg.Pool({ connectionString: url, max: pool });
  kyselyPool.on('error', () => {});
  const knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: pool } });
  const pgp = pgPromise();
  const db = new PostgresDatabase(benchConfig(url, { maxOpenConns: pool, maxIdleConns: pool }), logger);
  await db.connect();
  return {
    rawPool,
    knex,
    User: BenchUser.bindKnex(knex),
    Account: BenchAccount.bindKnex(knex),
    kysely: new Kysely<BenchDb>({ dialect: new PostgresDialect({ pool: kyselyPool }) }),
    sql: postgres(url, { max: pool, onnotice: () => {} }),
    pgp,
    pgpDb: pgp({ connectionString: url, max: pool }),
    db,
    repo: new UserRepository(db.driver()),
  };
}

export async function closeStacks(c: StackClients): Promise<void> {
  await Promise.allSettled([
    c.db.close(),
    c.knex.destroy(),
    c.kysely.destroy(),
    c.sql.end({ timeout: 5 }),
    c.rawPool.end(),
  ]);
  c.pgp.end();
}

type QueryFn = (...args: unknown[]) => unknown;

/**
 * The statements `fn` sends through pg (the top-level pg and pg-promise's own copy), as pg
 * saw them, whitespace collapsed and cut at 80 characters; postgres.js statements come from a
 * `debug` hook (`postgresDebug`), since postgres.js has its own protocol code. Patched only
 * while `fn` runs: never during a measurement. Run `fn` alone.
 */
export async function sentByAnyStack(
  pgps: ReadonlyArray<typeof pg>,
  debugSink: string[],
  fn: () => PromiseLike<unknown>,
): Promise<string[]> {
  const sent: string[] = [];
  const restore: Array<() => void> = [];
  for (const lib of new Set(pgps)) {
    const proto = lib.Client.prototype as unknown as { query: QueryFn };
    const original = proto.query;
    proto.query = function (this: unknown, ...args: unknown[]) {
      const q = args[0] as string | { text?: string } | undefined;
      sent.push(short(typeof q === 'string' ? q : (q?.text ?? '?')));
      return original.apply(this, args);
    };
    restore.push(() => (proto.query = original));
  }
  debugSink.length = 0;
  try {
    await fn();
  } finally {
    for (const r of restore) r();
  }
  return [...sent, ...debugSink.map(short)];
}

/** A postgres.js instance that records every statement in `sink` (debug mode costs: count with it, never measure). */
export function postgresDebug(url: string, sink: string[]): postgres.Sql {
  return postgres(url, { max: 2, onnotice: () => {}, debug: (_conn, query) => void sink.push(query) });
}

function short(sql: string): string {
  return sql.replace(/\s+/g, ' ').trim().slice(0, 80);
}
