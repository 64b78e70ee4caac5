import { expect } from 'chai';
import { loadConfig, type LoadConfigOptions } from '../../../src/config/index.js';
import { catchConfigError } from '../../support/catch-config-error.js';
import { useTempConfigDir } from '../../support/temp-config-dir.js';

describe('loadConfig() sources', () => {
  const tmp = useTempConfigDir();
  const load = (env: Record<string, string | undefined> = {}, opts: LoadConfigOptions = {}) =>
    loadConfig({ env, envFile: false, configDir: tmp().dir, ...opts });

  describe('*_FILE variables', () => {
    it('reads a secret from the file without its trailing newline', () => {
      const file = tmp().write('db_password', 's3cr3t-from-file\n');
      expect(load({ DB_PASSWORD_FILE: file }).database.postgres.password).to.equal('s3cr3t-from-file');
    });

    it('trims exactly one trailing newline (CRLF included)', () => {
      expect(load({ DB_PASSWORD_FILE: tmp().write('a', 'pw\n\n') }).database.postgres.password).to.equal(
        'pw\n',
      );
      expect(load({ DB_PASSWORD_FILE: tmp().write('b', 'pw\r\n') }).database.postgres.password).to.equal(
        'pw',
      );
    });

    it('works for every mapped variable, converting to the key type', () => {
      const config = load({
        SERVER_PORT_FILE: tmp().write('port', '9090\n'),
        DB_MIGRATIONS_USER_FILE: tmp().write('user', 'owner\n'),
        DB_MIGRATIONS_PASSWORD_FILE: tmp().write('pw', 'owner-pw\n'),
      });
      expect(config.server.port).to.equal(9090);
      expect(config.database.migrations.username).to.equal('owner');
      expect(config.database.migrations.password).to.equal('owner-pw');
    });

    it('reads DATABASE_URL_FILE too', () => {
      const file = tmp().write('url', 'postgres://app:pw@db.internal/app\n');
      expect(load({ DATABASE_URL_FILE: file }).database.postgres.host).to.equal('db.internal');
    });

    it('reports an unreadable file by variable and path, never its content', () => {
      const missing = tmp().missing('absent');
      const err = catchConfigError(() =>
        load({ DB_PASSWORD_FILE: missing, DB_SSL_ROOT_CERT_FILE: tmp().dir }),
      );
      expect(err.issues).to.have.members([
        `DB_PASSWORD_FILE: cannot read ${JSON.stringify(missing)} (ENOENT)`,
        `DB_SSL_ROOT_CERT_FILE: cannot read ${JSON.stringify(tmp().dir)} (EISDIR)`,
      ]);
    });

    it('reports a variable set both directly and as a file', () => {
      const file = tmp().write('pw', 'file-secret');
      const err = catchConfigError(() => load({ DB_PASSWORD: 'env-secret', DB_PASSWORD_FILE: file }));
      expect(err.issues).to.deep.equal([
        'DB_PASSWORD: DB_PASSWORD and DB_PASSWORD_FILE are both set; set only one',
      ]);
      expect(err.message).not.to.include('secret');
    });
  });

  describe('DATABASE_URL', () => {
    it('sets host, port, name, user, password, sslmode and application_name', () => {
      const { postgres } = load({
        DATABASE_URL:
          'postgres://svc:pw@db.example.com:6432/orders?sslmode=verify-full&application_name=orders-api',
      }).database;
      expect(postgres).to.include({
        host: 'db.example.com',
        port: 6432,
        name: 'orders',
        username: 'svc',
        sslMode: 'verify-full',
        applicationName: 'orders-api',
      });
      expect(postgres.password).to.equal('pw');
    });

    it('percent-decodes the user, password and database name', () => {
      const password = 'p@ss:w/rd%?#&=';
      const url = `postgresql://${encodeURIComponent('me@corp')}:${encodeURIComponent(password)}@h/${encodeURIComponent('my db')}`;
      const { postgres } = load({ DATABASE_URL: url }).database;
      expect([postgres.username, postgres.password, postgres.name]).to.deep.equal([
        'me@corp',
        password,
        'my db',
      ]);
    });

    it('reads an IPv6 host, a socket directory, sslrootcert and connect_timeout', () => {
      expect(load({ DATABASE_URL: 'postgres://u@[::1]:5433/db' }).database.postgres.host).to.equal('::1');
      const { postgres } = load({
        DATABASE_URL: 'postgres:///db?host=/var/run/postgresql&sslrootcert=/etc/ca.pem&connect_timeout=3',
      }).database;
      expect(postgres).to.include({
        host: '/var/run/postgresql',
        sslRootCert: '/etc/ca.pem',
        timeout: 3_000,
      });
    });

    it('keeps lower layers for the parts the URL leaves out (a password from a file)', () => {
      const config = load({
        DATABASE_URL: 'postgres://app@db.internal/app',
        DB_PASSWORD_FILE: tmp().write('pw', 'from-file\n'),
        DB_PORT: '7000',
      });
      expect(config.database.postgres.password).to.equal('from-file');
      expect(config.database.postgres.port).to.equal(7000);
    });

    it('reports a malformed URL without echoing it', () => {
      for (const url of ['not a url', 'postgres://u:hunter2@host:99999/db']) {
        const err = catchConfigError(() => load({ DATABASE_URL: url }));
        expect(err.issues).to.deep.equal([
          'DATABASE_URL: is not a valid URL (expected postgres://user:password@host:port/database)',
        ]);
      }
    });

    it('reports a wrong scheme, bad percent-encoding, an invalid sslmode and unknown parameters together', () => {
      expect(catchConfigError(() => load({ DATABASE_URL: 'mysql://u:hunter2@h/db' })).issues).to.deep.equal([
        'DATABASE_URL: must start with postgres:// or postgresql:// (got mysql://)',
      ]);
      const err = catchConfigError(() =>
        load({ DATABASE_URL: 'postgres://u:hunter2%zz@h/db?sslmode=sometimes&require_auth=md5' }),
      );
      expect(err.issues).to.have.members([
        'DATABASE_URL: the password is not valid percent-encoding',
        'DATABASE_URL: unsupported query parameter "require_auth" (supported: sslmode, sslrootcert, channel_binding, application_name, host, connect_timeout, target_session_attrs)',
        'database.postgres.sslMode: must be one of disable, prefer, require, verify-ca, verify-full (got "sometimes") [from DATABASE_URL]',
      ]);
      expect(err.message).not.to.include('hunter2');
    });
  });

  describe('YAML files', () => {
    it('accepts a missing profile file, an empty file and empty sections', () => {
      tmp().write('default.yaml', '# only comments\nserver:\ndatabase:\n  postgres:\n');
      tmp().write('staging.yaml', '');
      expect(load({}, { profile: 'staging' }).server.port).to.equal(8080);
      expect(load({}, { profile: 'qa' }).server.port).to.equal(8080);
    });

    it('reports a syntax error by file, line and column without quoting the text', () => {
      tmp().write('default.yaml', 'database:\n  postgres:\n    password: "hunter2\n    port: 1\n');
      const err = catchConfigError(() => load());
      expect(err.issues).to.have.length.greaterThan(0);
      for (const issue of err.issues)
        expect(issue).to.match(/default\.yaml: invalid YAML at line \d+, column \d+ \(\w+\)$/);
      expect(err.message).not.to.include('hunter2');
    });

    it('reports a duplicate key', () => {
      tmp().write('default.yaml', 'server:\n  port: 1\n  port: 2\n');
      expect(catchConfigError(() => load()).issues[0]).to.match(
        /default\.yaml: invalid YAML at line 3, column 3 \(DUPLICATE_KEY\)/,
      );
    });

    it('reports a file whose top level is not a mapping', () => {
      tmp().write('development.yaml', '- a\n- b\n');
      expect(catchConfigError(() => load()).issues).to.deep.equal([
        `${tmp().dir}/development.yaml: the top level must be a mapping of keys (got a list)`,
      ]);
    });

    it('reports an unknown key with the closest known one', () => {
      tmp().write(
        'default.yaml',
        'database:\n  postgres:\n    max_open_conns: 3\n  breakr: {}\nlogging: {}\nprofile: x\n',
      );
      const file = `${tmp().dir}/default.yaml`;
      expect(catchConfigError(() => load()).issues).to.have.members([
        `database.postgres.max_open_conns: unknown key (did you mean maxOpenConns?) [from ${file}]`,
        `database.breakr: unknown key (did you mean breaker?) [from ${file}]`,
        `logging: unknown key (did you mean log?) [from ${file}]`,
        `profile: unknown key (the profile comes from APP_ENV or NODE_ENV) [from ${file}]`,
      ]);
    });

    it('keeps a __proto__ key as an unknown key instead of touching a prototype', () => {
      tmp().write('default.yaml', '__proto__:\n  polluted: true\n');
      expect(catchConfigError(() => load()).issues[0]).to.match(/^__proto__: unknown key/);
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    });
  });

  describe('ConfigError', () => {
    it('lists every problem of every layer at once', () => {
      tmp().write(
        'default.yaml',
        'server:\n  port: "eighty"\ndatabase:\n  postgres:\n    maxOpenConn: 5\n    maxOpenConns: 4\n    maxIdleConns: 8\n',
      );
      const missing = tmp().missing('db_password');
      const file = `${tmp().dir}/default.yaml`;
      const err = catchConfigError(() => load({ DB_PORT: '70000', DB_PASSWORD_FILE: missing }));
      expect(err.code).to.equal('CONFIG_ERROR');
      expect(err.name).to.equal('ConfigError');
      expect(err.issues).to.have.members([
        `DB_PASSWORD_FILE: cannot read ${JSON.stringify(missing)} (ENOENT)`,
        `server.port: expected an integer (got "eighty") [from ${file}]`,
        'database.postgres.port: must be between 1 and 65535 (got 70000) [from DB_PORT]',
        `database.postgres.maxOpenConn: unknown key (did you mean maxOpenConns?) [from ${file}]`,
        `database.postgres.maxIdleConns: must be at most maxOpenConns (4) (got 8) [from ${file}]`,
      ]);
      expect(err.message).to.match(/^Invalid configuration \(5 problems\):\n {2}- /);
      for (const issue of err.issues) expect(err.message).to.include(issue);
    });

    it('reports the other cross-field rules', () => {
      const err = catchConfigError(() =>
        load({
          DB_RETRY_DELAY: '10s',
          DB_MAX_RETRY_DELAY: '5s',
          DB_TX_BASE_DELAY: '2s',
          DB_TX_MAX_DELAY: '1s',
          DB_MIGRATIONS_PASSWORD: 'x',
        }),
      );
      expect(err.issues).to.have.members([
        'database.postgres.retryDelay: must be at most maxRetryDelay (5000) (got 10000) [from DB_RETRY_DELAY]',
        'database.transactions.baseDelay: must be at most maxDelay (1000) (got 2000) [from DB_TX_BASE_DELAY]',
        'database.migrations.password: is set but database.migrations.username is empty',
      ]);
    });

    it('lets maxIdleConns left at its default follow a lower maxOpenConns, as Go lowers MaxIdleConns', () => {
      const cfg = load({ DB_MAX_OPEN_CONNS: '4' });
      expect(cfg.database.postgres).to.include({ maxOpenConns: 4, maxIdleConns: 10 });
      expect(
        catchConfigError(() => load({ DB_MAX_OPEN_CONNS: '4', DB_MAX_IDLE_CONNS: '5' })).issues,
      ).to.deep.equal([
        'database.postgres.maxIdleConns: must be at most maxOpenConns (4) (got 5) [from DB_MAX_IDLE_CONNS]',
      ]);
    });

    it('reads the retry budget from decimal variables and keeps its ratio between 0 and 1', () => {
      const cfg = load({ DB_TX_RETRY_BUDGET_RATIO: '0.25', DB_TX_RETRY_BUDGET_BURST: '3' });
      expect(cfg.database.transactions.retryBudget).to.deep.equal({ ratio: 0.25, burst: 3 });
      expect(
        catchConfigError(() => load({ DB_TX_RETRY_BUDGET_RATIO: '1.5', DB_TX_RETRY_BUDGET_BURST: '0' }))
          .issues,
      ).to.have.members([
        'database.transactions.retryBudget.ratio: must be between 0 and 1 (got 1.5) [from DB_TX_RETRY_BUDGET_RATIO]',
        'database.transactions.retryBudget.burst: must be between 1 and 1000000 (got 0) [from DB_TX_RETRY_BUDGET_BURST]',
      ]);
    });

    it('reports enums, strings and ranges with the allowed values', () => {
      const err = catchConfigError(() =>
        load({
          LOG_LEVEL: 'verbose',
          DB_MAX_OPEN_CONNS: '0',
          DB_FOREIGN_CONNECTION_GUARD: 'maybe',
          LOG_PRETTY: 'sure',
        }),
      );
      expect(err.issues).to.have.members([
        'log.level: must be one of fatal, error, warn, info, debug, trace, silent (got "verbose") [from LOG_LEVEL]',
        'log.pretty: expected true or false (got "sure") [from LOG_PRETTY]',
        'database.postgres.maxOpenConns: must be between 1 and 10000 (got 0) [from DB_MAX_OPEN_CONNS]',
        'database.transactions.foreignConnectionGuard: must be one of off, warn, error (got "maybe") [from DB_FOREIGN_CONNECTION_GUARD]',
      ]);
    });
  });
});
