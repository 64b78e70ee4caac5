import { expect } from 'chai';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { DEFAULTS, loadConfig, redactConfig, type LoadConfigOptions } from '../../../src/config/index.js';
import { catchConfigError } from '../../support/catch-config-error.js';
import { useTempConfigDir } from '../../support/temp-config-dir.js';

describe('loadConfig()', () => {
  const tmp = useTempConfigDir();
  /** Loads from the temp dir only: no .env, no process.env. */
  const load = (env: Record<string, string | undefined> = {}, opts: LoadConfigOptions = {}) =>
    loadConfig({ env, envFile: false, configDir: tmp().dir, ...opts });

  describe('precedence', () => {
    it('returns the built-in defaults when nothing else is configured', () => {
      const config = load({}, { profile: 'staging' });
      expect(redactConfig(config)).to.deep.equal({ profile: 'staging', ...DEFAULTS });
    });

    it('lets config/default.yaml override a built-in default', () => {
      tmp().write('default.yaml', 'database:\n  postgres:\n    maxOpenConns: 20\n');
      expect(load().database.postgres.maxOpenConns).to.equal(20);
    });

    it('lets config/<profile>.yaml override default.yaml key by key', () => {
      tmp().write('default.yaml', 'database:\n  postgres:\n    port: 6000\n    name: shared\n');
      tmp().write('staging.yaml', 'database:\n  postgres:\n    port: 6001\n');
      const { postgres } = load({}, { profile: 'staging' }).database;
      expect(postgres.port).to.equal(6001);
      expect(postgres.name).to.equal('shared');
    });

    it('lets an environment variable override the profile file', () => {
      tmp().write('development.yaml', 'database:\n  postgres:\n    port: 6001\n');
      expect(load({ DB_PORT: '6002' }).database.postgres.port).to.equal(6002);
    });

    it('fills only unset variables from the .env file and leaves process.env alone', () => {
      const envFile = tmp().write('.env', 'DB_PORT=6003\nDB_NAME=from_dotenv\nPGDL_UNUSED_MARKER=1\n');
      const config = load({ DB_PORT: '6002' }, { envFile });
      expect(config.database.postgres.port).to.equal(6002);
      expect(config.database.postgres.name).to.equal('from_dotenv');
      expect(process.env.PGDL_UNUSED_MARKER).to.equal(undefined);
    });

    it('lets DATABASE_URL override the DB_* variables for the parts it contains', () => {
      const config = load({
        DB_HOST: 'env-host',
        DB_NAME: 'env_db',
        DATABASE_URL: 'postgres://url_user@url-host:6500',
      });
      const { postgres } = config.database;
      expect([postgres.host, postgres.port, postgres.username]).to.deep.equal(['url-host', 6500, 'url_user']);
      expect(postgres.name).to.equal('env_db');
    });

    it('treats an empty variable as unset', () => {
      tmp().write('default.yaml', 'server:\n  port: 9000\n');
      expect(load({ SERVER_PORT: '' }).server.port).to.equal(9000);
    });

    it('reads process.env when no env is passed, and ignores it when one is', () => {
      const saved = process.env.DB_NAME;
      process.env.DB_NAME = 'from_process';
      try {
        expect(
          loadConfig({ envFile: false, configDir: tmp().dir, profile: 'staging' }).database.postgres.name,
        ).to.equal('from_process');
        expect(load({}).database.postgres.name).to.equal(DEFAULTS.database.postgres.name);
      } finally {
        if (saved === undefined) delete process.env.DB_NAME;
        else process.env.DB_NAME = saved;
      }
    });

    it('reads ./.env and ./config from the working directory by default, and CONFIG_DIR when set', () => {
      const cwd = process.cwd();
      tmp().write('.env', 'DB_NAME=cwd_dotenv\n');
      try {
        process.chdir(tmp().dir);
        // No config/ here yet: a missing directory is an empty layer.
        expect(loadConfig({ env: {} }).database.postgres.name).to.equal('cwd_dotenv');
        mkdirSync(path.join(tmp().dir, 'config'));
        tmp().write('config/default.yaml', 'server:\n  port: 9100\n');
        expect(loadConfig({ env: {} }).server.port).to.equal(9100);
        tmp().write('default.yaml', 'server:\n  port: 9200\n');
        expect(loadConfig({ env: { CONFIG_DIR: tmp().dir } }).server.port).to.equal(9200);
      } finally {
        process.chdir(cwd);
      }
    });

    it('reports a .env file that was asked for by name and does not exist', () => {
      const missing = tmp().missing('nope.env');
      const err = catchConfigError(() => load({}, { envFile: missing }));
      expect(err.issues).to.deep.equal([`envFile: cannot read ${JSON.stringify(missing)} (ENOENT)`]);
    });
  });

  describe('profile', () => {
    it('defaults to development', () => {
      const config = load();
      expect(config.profile).to.equal('development');
      expect(config.log).to.include({ level: 'debug', pretty: true });
      expect(config.database.migrateOnStart).to.equal(true);
      expect(config.database.postgres.sslMode).to.equal('disable');
    });

    it('comes from NODE_ENV, then APP_ENV, then the option, each winning over the last', () => {
      expect(load({ NODE_ENV: 'test' }).profile).to.equal('test');
      expect(load({ NODE_ENV: 'test', APP_ENV: 'staging' }).profile).to.equal('staging');
      expect(load({ NODE_ENV: 'test', APP_ENV: 'staging' }, { profile: 'qa' }).profile).to.equal('qa');
      expect(load({ APP_ENV: '', NODE_ENV: 'test' }).profile).to.equal('test');
    });

    it('reads the YAML file named after the profile', () => {
      tmp().write('qa.yaml', 'server:\n  port: 8181\n');
      tmp().write('development.yaml', 'server:\n  port: 8282\n');
      expect(load({ APP_ENV: 'qa' }).server.port).to.equal(8181);
    });

    it('applies the test profile defaults', () => {
      const config = load({ APP_ENV: 'test' });
      expect(config.log).to.include({ level: 'warn', pretty: false });
      expect(config.database.migrateOnStart).to.equal(true);
    });

    it('applies the production profile defaults', () => {
      const config = load({ APP_ENV: 'production', DB_HOST: 'db.internal', DB_PASSWORD: 'pw' });
      expect(config.server.host).to.equal('0.0.0.0');
      expect(config.log).to.include({ level: 'info', pretty: false });
      expect(config.database.migrateOnStart).to.equal(false);
      expect(config.database.postgres.sslMode).to.equal('verify-full');
      expect(config.database.postgres.channelBinding).to.equal('prefer');
      expect(config.database.postgres.allowInsecurePasswordAuth).to.equal(false);
    });

    it('takes channel_binding from DATABASE_URL, and refuses channelBinding require without TLS', () => {
      const cfg = load({
        APP_ENV: 'test',
        DATABASE_URL: 'postgres://u:p@h/db?sslmode=verify-full&channel_binding=require',
      });
      expect(cfg.database.postgres.channelBinding).to.equal('require');
      expect(
        catchConfigError(() => load({ APP_ENV: 'test', DB_CHANNEL_BINDING: 'require' })).issues,
      ).to.deep.equal([
        'database.postgres.channelBinding: require needs TLS, but sslMode is disable [from DB_CHANNEL_BINDING]',
      ]);
      expect(
        load({ APP_ENV: 'test', DB_ALLOW_INSECURE_AUTH: 'true' }).database.postgres.allowInsecurePasswordAuth,
      ).to.equal(true);
    });

    it('requires a host and a password in production', () => {
      expect(catchConfigError(() => load({ APP_ENV: 'production' })).issues).to.deep.equal([
        'database.postgres.host: must be set in the production profile ' +
          '(empty means an embedded PostgreSQL, for development and tests only)',
      ]);
      expect(catchConfigError(() => load({ APP_ENV: 'production', DB_HOST: 'db' })).issues).to.deep.equal([
        'database.postgres.password: must be set in the production profile ' +
          '(DB_PASSWORD, DB_PASSWORD_FILE or DATABASE_URL)',
      ]);
    });

    it('rejects a profile name that could escape the config directory', () => {
      const err = catchConfigError(() => load({ APP_ENV: '../secrets' }));
      expect(err.issues[0]).to.match(/^profile: "\.\.\/secrets" is not a valid profile name/);
      expect(catchConfigError(() => load({}, { profile: 'default' })).issues[0]).to.match(/^profile: /);
    });
  });

  describe('values', () => {
    it('reads durations as Go-style strings or milliseconds from YAML and the environment', () => {
      tmp().write(
        'default.yaml',
        'database:\n  postgres:\n    timeout: 1.5s\n    statementTimeout: 250\n    connMaxLifetime: 1h\n',
      );
      const { postgres } = load({ DB_LOCK_TIMEOUT: '1m30s', DB_RETRY_DELAY: '150' }).database;
      expect(postgres.timeout).to.equal(1_500);
      expect(postgres.statementTimeout).to.equal(250);
      expect(postgres.connMaxLifetime).to.equal(3_600_000);
      expect(postgres.lockTimeout).to.equal(90_000);
      expect(postgres.retryDelay).to.equal(150);
    });

    it('reports an invalid duration with its key and where it came from', () => {
      tmp().write('default.yaml', 'log:\n  slowQueryThreshold: 5 sec\n');
      const err = catchConfigError(() => load({ DB_TX_MAX_DELAY: '-1s' }));
      expect(err.issues).to.have.members([
        `log.slowQueryThreshold: expected a duration such as "500ms", "30s", "1m30s" or a number of milliseconds (got "5 sec") [from ${tmp().dir}/default.yaml]`,
        'database.transactions.maxDelay: must not be negative (got "-1s") [from DB_TX_MAX_DELAY]',
      ]);
    });

    it('reads booleans and numbers from their variables', () => {
      const config = load({
        LOG_PRETTY: 'off',
        DB_PREPARED_STATEMENTS: 'FALSE',
        DB_MIGRATE_ON_START: 'yes',
        SERVER_BODY_LIMIT: '2048',
        DB_FOREIGN_CONNECTION_GUARD: 'error',
        DB_TX_RESOLVE_LOST_COMMIT: 'false',
      });
      expect(config.log.pretty).to.equal(false);
      expect(config.database.postgres.preparedStatements).to.equal(false);
      expect(config.database.migrateOnStart).to.equal(true);
      expect(config.server.bodyLimit).to.equal(2048);
      expect(config.database.transactions.foreignConnectionGuard).to.equal('error');
      expect(config.database.transactions.resolveLostCommit).to.equal(false);
    });

    it('returns a deeply frozen config', () => {
      const config = load();
      expect(Object.isFrozen(config)).to.equal(true);
      expect(Object.isFrozen(config.database.postgres)).to.equal(true);
      expect(Object.isFrozen(config.database.migrations)).to.equal(true);
      expect(() => {
        (config.server as { port: number }).port = 1;
      }).to.throw(TypeError);
      expect(() => {
        (config.database.postgres as { password: string }).password = 'x';
      }).to.throw(TypeError);
    });
  });
});
