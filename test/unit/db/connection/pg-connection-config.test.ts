import { expect } from 'chai';
import { knexConfig, lifetimeJitterMs, reapIntervalMs } from '../../../../src/db/pool/knex-config.js';
import {
  namedStatementsAllowed,
  pgClientConfig,
  startupOptions,
  transactionLocalSettings,
} from '../../../../src/db/connection/pg-connection-config.js';
import { postgresConfigFromUrl } from '../../../support/test-database.js';
import pino from 'pino';

const cfg = (over = {}) => ({
  ...postgresConfigFromUrl(new URL('postgres://app:s3cret-pw@db.internal:6543/appdb')),
  ...over,
});

describe('startupOptions()', () => {
  it('sets each non-zero server-side limit with -c, in milliseconds', () => {
    expect(
      startupOptions({
        statementTimeout: 30_000,
        lockTimeout: 10_000,
        idleInTransactionSessionTimeout: 60_000,
      }),
    ).to.equal(
      '-c statement_timeout=30000 -c lock_timeout=10000 -c idle_in_transaction_session_timeout=60000',
    );
  });

  it('leaves out limits of 0 and returns undefined when none is set', () => {
    expect(
      startupOptions({ statementTimeout: 0, lockTimeout: 500, idleInTransactionSessionTimeout: 0 }),
    ).to.equal('-c lock_timeout=500');
    expect(
      startupOptions({ statementTimeout: 0, lockTimeout: 0, idleInTransactionSessionTimeout: 0 }),
    ).to.equal(undefined);
  });

  it('rounds fractional milliseconds down to integers', () => {
    expect(
      startupOptions({ statementTimeout: 1500.7, lockTimeout: 0, idleInTransactionSessionTimeout: 0 }),
    ).to.equal('-c statement_timeout=1500');
  });
});

describe('poolerMode transaction (PgBouncer transaction pooling)', () => {
  it('sends no startup options: pgClientConfig has none', () => {
    expect(startupOptions(cfg({ poolerMode: 'transaction' }))).to.equal(undefined);
    expect(pgClientConfig(cfg({ poolerMode: 'transaction' }))).not.to.have.property('options');
    expect(pgClientConfig(cfg({ poolerMode: 'none' }))).to.have.property('options');
  });

  it('turns the limits into SET LOCALs, integers only, leaving out a limit of 0', () => {
    expect(
      transactionLocalSettings({
        statementTimeout: 30_000.9,
        lockTimeout: 0,
        idleInTransactionSessionTimeout: 60_000,
      }),
    ).to.equal('SET LOCAL statement_timeout = 30000; SET LOCAL idle_in_transaction_session_timeout = 60000');
    expect(
      transactionLocalSettings({ statementTimeout: 0, lockTimeout: 0, idleInTransactionSessionTimeout: 0 }),
    ).to.equal(undefined);
  });

  it('never allows named statements in transaction mode, whatever preparedStatements says', () => {
    expect(namedStatementsAllowed({ preparedStatements: true, poolerMode: 'transaction' })).to.equal(false);
    expect(namedStatementsAllowed({ preparedStatements: true, poolerMode: 'none' })).to.equal(true);
    expect(namedStatementsAllowed({ preparedStatements: false, poolerMode: 'none' })).to.equal(false);
  });
});

describe('pgClientConfig()', () => {
  it('passes discrete fields with keepalive and the connect timeout, and never the password', () => {
    const c = pgClientConfig(cfg({ timeout: 2_000, applicationName: 'svc' }));
    expect(c).to.include({
      host: 'db.internal',
      port: 6543,
      database: 'appdb',
      user: 'app',
      application_name: 'svc',
      keepAlive: true,
      connectionTimeoutMillis: 2_000,
    });
    expect(c).not.to.have.property('password');
    expect(c).not.to.have.property('connectionString');
    expect(JSON.stringify(c)).not.to.include('s3cret-pw');
  });
});

describe('knexConfig()', () => {
  const silent = pino({ level: 'silent' });

  it('maps pool sizes, idle time, lifetime and timeouts onto knex and tarn', () => {
    const k = knexConfig(
      cfg({
        maxOpenConns: 8,
        maxIdleConns: 3,
        connMaxIdleTime: 30_000,
        connMaxLifetime: 600_000,
        timeout: 4_000,
      }),
      () => true,
      silent,
    );
    // No floor, and tarn's own reaper never fires: the ConnectionCleaner applies Go's rules.
    expect(k.pool).to.include({
      max: 8,
      min: 0,
      idleTimeoutMillis: 2 ** 31 - 1,
      reapIntervalMillis: 2 ** 31 - 1,
      createTimeoutMillis: 4_000,
      propagateCreateError: true,
      maxConnectionLifetimeMillis: 600_000,
      maxConnectionLifetimeJitterMillis: 60_000,
    });
    expect(k).to.include({ acquireConnectionTimeout: 4_000, compileSqlOnError: false, client: 'pg' });
  });

  it('gives knex no lifetime when connMaxLifetime is 0, and tarn no floor whatever maxIdleConns is', () => {
    const k = knexConfig(
      cfg({ maxOpenConns: 2, maxIdleConns: 5, connMaxIdleTime: 0, connMaxLifetime: 0 }),
      () => true,
      silent,
    );
    expect(k.pool?.min).to.equal(0);
    expect(k.pool).not.to.have.property('maxConnectionLifetimeMillis');
  });

  it('keeps the password out of the knex connection settings', () => {
    const k = knexConfig(cfg(), () => true, silent);
    expect(k.connection).not.to.have.property('password');
    expect(JSON.stringify(k.connection)).not.to.include('s3cret-pw');
  });

  it('cleans often enough for the shorter of idle time and lifetime, and jitters lifetimes by a tenth', () => {
    expect(reapIntervalMs(150)).to.equal(75);
    expect(reapIntervalMs(20)).to.equal(50);
    expect(reapIntervalMs(0)).to.equal(1_000);
    expect(reapIntervalMs(0, 400)).to.equal(200);
    expect(reapIntervalMs(300_000, 1_800_000)).to.equal(1_000);
    expect(reapIntervalMs(0, 0)).to.equal(1_000);
    expect(lifetimeJitterMs(1_000)).to.equal(100);
    expect(lifetimeJitterMs(3_600_000)).to.equal(60_000);
  });
});
