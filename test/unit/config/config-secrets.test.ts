import { expect } from 'chai';
import util from 'node:util';
import { loadConfig, redactConfig, REDACTED } from '../../../src/config/index.js';
import { catchConfigError } from '../../support/catch-config-error.js';
import { useTempConfigDir } from '../../support/temp-config-dir.js';

const SECRET = 'hunter2-Sup3rSecret';
const MIGRATIONS_SECRET = 'owner-Sup3rSecret';

describe('loadConfig() secrets', () => {
  const tmp = useTempConfigDir();
  const load = (env: Record<string, string | undefined>) =>
    loadConfig({ env, envFile: false, configDir: tmp().dir });
  const withSecrets = () =>
    load({
      DATABASE_URL: `postgres://app:${SECRET}@db.internal/app`,
      DB_MIGRATIONS_USER: 'owner',
      DB_MIGRATIONS_PASSWORD: MIGRATIONS_SECRET,
    });

  it('keeps the passwords readable', () => {
    const config = withSecrets();
    expect(config.database.postgres.password).to.equal(SECRET);
    expect(config.database.migrations.password).to.equal(MIGRATIONS_SECRET);
  });

  it('leaves the passwords out of JSON.stringify, util.inspect (even showHidden), keys and template strings', () => {
    const config = withSecrets();
    const renderings = [
      JSON.stringify(config),
      util.inspect(config, { depth: null }),
      util.format('%o', config),
      util.inspect(config, { depth: null, showHidden: true }),
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- what a careless template prints
      `${String(config)} ${String(config.database.postgres)}`,
      Object.keys(config.database.postgres).join(','),
    ];
    for (const text of renderings) {
      expect(text).not.to.include(SECRET);
      expect(text).not.to.include(MIGRATIONS_SECRET);
    }
    expect(Object.keys(config.database.postgres)).not.to.include('password');
  });

  it('prints a redacted copy with redactConfig()', () => {
    const config = withSecrets();
    const printed = redactConfig(config);
    expect(printed.database.postgres.password).to.equal(REDACTED);
    expect(printed.database.migrations.password).to.equal(REDACTED);
    expect(printed.database.postgres.host).to.equal('db.internal');
    expect(JSON.stringify(printed)).not.to.include(SECRET);
    expect(Object.isFrozen(printed)).to.equal(false);
    expect(redactConfig(load({})).database.postgres.password).to.equal('');
  });

  it('never puts a password into ConfigError text', () => {
    tmp().write(
      'default.yaml',
      [
        'database:',
        `  migrations: { password: 12345678, username: 7 }`,
        '  postgres:',
        `    sslRootCert: { secret: "${SECRET}" }`,
        `  embedded: "postgres://u:${SECRET}@h/db"`,
      ].join('\n'),
    );
    const err = catchConfigError(() =>
      load({ DB_PASSWORD: SECRET, DB_PORT: 'x', DB_PASSWORD_FILE: tmp().missing('pw') }),
    );
    expect(err.issues).to.have.members([
      'DB_PASSWORD: DB_PASSWORD and DB_PASSWORD_FILE are both set; set only one',
      'database.postgres.port: expected an integer (got "x") [from DB_PORT]',
      `database.postgres.sslRootCert: expected a string (got a mapping) [from ${tmp().dir}/default.yaml]`,
      `database.embedded: expected a mapping of keys (got a string) [from ${tmp().dir}/default.yaml]`,
      `database.migrations.username: expected a string (got 7) [from ${tmp().dir}/default.yaml]`,
      `database.migrations.password: expected a string [from ${tmp().dir}/default.yaml]`,
    ]);
    const text = `${err.message}\n${err.stack ?? ''}\n${util.inspect(err)}`;
    for (const secret of [SECRET, '12345678']) expect(text).not.to.include(secret);
  });

  it('does not echo the password of a malformed DATABASE_URL', () => {
    const err = catchConfigError(() => load({ DATABASE_URL: `postgres://app:${SECRET}@db:notaport/app` }));
    expect(util.inspect(err)).not.to.include(SECRET);
  });
});
