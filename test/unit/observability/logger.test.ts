import { expect } from 'chai';
import { Writable } from 'node:stream';
import type { LogConfig } from '../../../src/config/app-config.js';
import { loadConfig } from '../../../src/config/index.js';
import {
  createLogger,
  isInstalled,
  REDACT_PATHS,
  REDACTED,
  scrubSecrets,
} from '../../../src/observability/logger.js';

const SECRET = 'hunter2-Sup3rSecret';
const JSON_CFG: LogConfig = { level: 'info', pretty: false, queryBindings: false, slowQueryThreshold: 1_000 };

/** A logger writing into a string, and the lines written so far (parsed when JSON). */
function capture(cfg: Partial<LogConfig> = {}) {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  const logger = createLogger({ ...JSON_CFG, ...cfg }, stream);
  return {
    logger,
    text: () => text,
    lines: () =>
      text
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

describe('createLogger()', () => {
  it('writes JSON lines at the configured level', () => {
    const out = capture({ level: 'warn' });
    out.logger.info('hidden');
    out.logger.warn({ component: 'test' }, 'shown');
    const lines = out.lines();
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include({ level: 40, component: 'test', msg: 'shown' });
    expect(lines[0]?.time).to.match(/^\d{4}-\d\d-\d\dT/);
  });

  it('redacts passwords, connection strings and credential headers by path', () => {
    const out = capture();
    out.logger.info(
      {
        password: SECRET,
        user: { password: SECRET },
        db: { postgres: { password: SECRET } },
        knex: { connection: { pool: { password: SECRET } } },
        connectionString: SECRET,
        pg: { connectionString: SECRET },
        DATABASE_URL: SECRET,
        req: { headers: { authorization: `Bearer ${SECRET}`, cookie: `sid=${SECRET}`, host: 'x' } },
      },
      'objects',
    );
    expect(out.text()).not.to.include(SECRET);
    const [line] = out.lines();
    expect(line?.password).to.equal(REDACTED);
    expect(line?.req).to.deep.equal({ headers: { authorization: REDACTED, cookie: REDACTED, host: 'x' } });
  });

  it('scrubs a URL password from messages, err.message, err.stack and bindings', () => {
    const out = capture();
    const url = `postgres://app:${SECRET}@db:5432/app`;
    out.logger.child({ target: url }).error(new Error(`connect ECONNREFUSED for ${url}`));
    out.logger.error({ err: new Error(`failed: ${url}`) }, `retrying %s`, url);
    out.logger.info({
      deep: { a: { b: { c: { d: { password: SECRET, note: `host=db password=${SECRET}` } } } } },
    });
    expect(out.text()).not.to.include(SECRET);
    const [first] = out.lines();
    expect(first?.target).to.equal(`postgres://app:${REDACTED}@db:5432/app`);
    expect((first?.err as { message: string }).message).to.equal(
      `connect ECONNREFUSED for postgres://app:${REDACTED}@db:5432/app`,
    );
  });

  it('never shows the loaded config passwords', () => {
    const config = loadConfig({
      env: {
        DATABASE_URL: `postgres://app:${SECRET}@db/app`,
        DB_MIGRATIONS_USER: 'o',
        DB_MIGRATIONS_PASSWORD: SECRET,
      },
      envFile: false,
      configDir: 'no-such-dir',
    });
    const out = capture();
    out.logger.info({ config }, 'config');
    out.logger.info(config.database, 'database');
    expect(out.text()).not.to.include(SECRET);
    expect(out.text()).to.include('"host":"db"');
  });

  it('prettifies synchronously into the destination when pretty, still redacted', () => {
    const out = capture({ pretty: true });
    out.logger.info({ password: SECRET, url: `postgresql://u:${SECRET}@h/db` }, 'pretty line');
    expect(out.text()).to.match(/INFO.*pretty line/);
    expect(out.text()).not.to.include(SECRET);
    expect(() => {
      JSON.parse(out.text());
    }).to.throw(SyntaxError);
  });

  it('exports its redaction list', () => {
    expect(REDACT_PATHS).to.include.members([
      'password',
      '*.password',
      'connectionString',
      'req.headers.authorization',
    ]);
  });
});

describe('isInstalled()', () => {
  const missing = (id: string): string => {
    throw Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' });
  };

  it('is true for pino-pretty here, a development install', () => {
    expect(isInstalled('pino-pretty')).to.equal(true);
  });

  it('is false when the module cannot be resolved, as on a production install', () => {
    expect(isInstalled('pino-pretty', missing)).to.equal(false);
    expect(isInstalled('no-such-package-pgdl')).to.equal(false);
  });

  it('rethrows a resolver failure other than a missing module', () => {
    const broken = (): string => {
      throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
    };
    expect(() => isInstalled('pino-pretty', broken)).to.throw('EACCES');
  });
});

describe('scrubSecrets()', () => {
  const cases: Array<[string, string]> = [
    ['postgres://app:s3cret@db:5432/app', `postgres://app:${REDACTED}@db:5432/app`],
    ['postgresql://app:p@ss@db/app?sslmode=require', `postgresql://app:${REDACTED}@db/app?sslmode=require`],
    [
      'see redis://:tok@cache:6379 and postgres://u:p@h',
      `see redis://:${REDACTED}@cache:6379 and postgres://u:${REDACTED}@h`,
    ],
    ['host=db user=app password=s3cret dbname=app', `host=db user=app password=${REDACTED} dbname=app`],
    ["host=db password='s3 cret' port=5432", `host=db password=${REDACTED} port=5432`],
    ['DB_PASSWORD=s3cret LOG_LEVEL=info', `DB_PASSWORD=${REDACTED} LOG_LEVEL=info`],
    ['?user=a&password=s3cret&x=1', `?user=a&password=${REDACTED}&x=1`],
    ['{"password":"s3cret","user":"a"}', `{"password":"${REDACTED}","user":"a"}`],
    ['{"apiToken": "abc\\"def", "n": 1}', `{"apiToken": "${REDACTED}", "n": 1}`],
  ];
  for (const [input, expected] of cases) {
    it(`scrubs ${JSON.stringify(input)}`, () => {
      expect(scrubSecrets(input)).to.equal(expected);
    });
  }

  it('leaves text without credentials unchanged', () => {
    for (const text of [
      'http://localhost:8080/health',
      'password authentication failed for user "app"',
      'user a@example.com logged in',
      'postgres://app@db/app',
    ]) {
      expect(scrubSecrets(text)).to.equal(text);
    }
  });

  it('keeps a JSON line valid when a URL and an e-mail address share it', () => {
    const line = JSON.stringify({ url: 'postgres://u:pw@h/db', email: 'a@b.c' });
    expect(JSON.parse(scrubSecrets(line))).to.deep.equal({
      url: `postgres://u:${REDACTED}@h/db`,
      email: 'a@b.c',
    });
  });
});

describe('createLogger() with a mixin', () => {
  /** A JSON logger into a string whose mixin returns `fields()`. */
  function captureWithMixin(fields: () => Record<string, unknown> | undefined) {
    let text = '';
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        text += chunk.toString();
        done();
      },
    });
    const logger = createLogger(JSON_CFG, stream, { mixin: fields });
    return { logger, text: () => text, line: () => JSON.parse(text.trim().split('\n').at(-1)!) as object };
  }

  it('adds the mixin fields to every line, including those of child loggers', () => {
    const out = captureWithMixin(() => ({ reqId: 'req-1' }));
    out.logger.info('root line');
    expect(out.line()).to.include({ reqId: 'req-1', msg: 'root line' });
    out.logger.child({ component: 'tx' }).warn('child line');
    expect(out.line()).to.include({ reqId: 'req-1', component: 'tx', msg: 'child line' });
  });

  it("lets the line's own field win over the mixin's", () => {
    const out = captureWithMixin(() => ({ reqId: 'from-mixin' }));
    out.logger.info({ reqId: 'own' }, 'line');
    expect(out.line()).to.include({ reqId: 'own' });
    expect(out.text().match(/"reqId"/g)).to.have.length(1);
  });

  it('writes a key a child logger binds once, with the bound value', () => {
    const out = captureWithMixin(() => ({ reqId: 'from-mixin' }));
    out.logger.child({ reqId: 'bound' }).info('line');
    expect(out.text().match(/"reqId"/g)).to.have.length(1);
    expect(out.line()).to.include({ reqId: 'bound' });
  });

  it('adds nothing when the mixin returns undefined', () => {
    const out = captureWithMixin(() => undefined);
    out.logger.info('line');
    expect(out.line()).not.to.have.property('reqId');
  });

  it('runs the mixin only for lines at or above the level', () => {
    let calls = 0;
    const out = captureWithMixin(() => {
      calls += 1;
      return { reqId: 'r' };
    });
    out.logger.debug('below info');
    expect(calls).to.equal(0);
    out.logger.info('at info');
    expect(calls).to.equal(1);
  });
});
