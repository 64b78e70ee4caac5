import { expect } from 'chai';
import sinon from 'sinon';
import { ConfigError } from '../../src/config/config-error.js';
import { loadConfig } from '../../src/config/index.js';
import type { AppConfig } from '../../src/config/app-config.js';
import { changedKeys, reloadConfig } from '../../src/reload-config.js';
import { captureLogger } from '../support/capture-logger.js';

const load = (env: Record<string, string>): AppConfig =>
  loadConfig({
    env: { APP_ENV: 'test', DB_HOST: 'db.internal', DB_PASSWORD: 'first-secret', ...env },
    configDir: '/nonexistent',
  });

describe('reloadConfig (SIGHUP)', () => {
  it('resizes the pool to the new size and returns the configuration with it applied', () => {
    const running = load({ DB_MAX_OPEN_CONNS: '4', DB_MAX_IDLE_CONNS: '4' });
    const db = { resizePool: sinon.spy() };
    const { logger, lines } = captureLogger();
    const now = reloadConfig(
      running,
      () => load({ DB_MAX_OPEN_CONNS: '9', DB_MAX_IDLE_CONNS: '3' }),
      db,
      logger,
    );
    expect(db.resizePool.args).to.deep.equal([[{ maxOpenConns: 9, maxIdleConns: 3 }]]);
    expect(now.database.postgres).to.include({ maxOpenConns: 9, maxIdleConns: 3 });
    expect(now.database.postgres.password).to.equal('first-secret');
    expect(changedKeys(running, now)).to.deep.equal([
      'database.postgres.maxIdleConns',
      'database.postgres.maxOpenConns',
    ]);
    expect(lines.map((l) => l.msg)).to.deep.equal(['configuration reloaded: pool resized']);
    // The same file again changes nothing.
    reloadConfig(now, () => load({ DB_MAX_OPEN_CONNS: '9', DB_MAX_IDLE_CONNS: '3' }), db, logger);
    expect(db.resizePool.callCount).to.equal(1);
  });

  it('lets an unset maxIdleConns follow a lower maxOpenConns, as at start', () => {
    const db = { resizePool: sinon.spy() };
    reloadConfig(load({}), () => load({ DB_MAX_OPEN_CONNS: '2' }), db, captureLogger().logger);
    expect(db.resizePool.args).to.deep.equal([[{ maxOpenConns: 2, maxIdleConns: 2 }]]);
  });

  it('names other changed keys as needing a restart, a password by name only, and applies none of them', () => {
    const running = load({});
    const db = { resizePool: sinon.spy() };
    const { logger, lines } = captureLogger();
    const now = reloadConfig(
      running,
      () => load({ DB_PASSWORD: 'second-secret', SERVER_BODY_LIMIT: '2048' }),
      db,
      logger,
    );
    expect(now).to.equal(running);
    expect(db.resizePool.called).to.equal(false);
    const warn = lines.find((l) => l.msg.includes('need a restart'));
    expect(warn?.keys).to.deep.equal(['database.postgres.password', 'server.bodyLimit']);
    expect(JSON.stringify(lines)).not.to.include('second-secret');
  });

  it('changes nothing when the configuration does not load, or the pool refuses the size', () => {
    const running = load({});
    const db = { resizePool: sinon.stub().throws(new ConfigError(['maxOpenConns: refused'])) };
    const { logger, lines } = captureLogger();
    expect(reloadConfig(running, () => load({ DB_MAX_OPEN_CONNS: '0' }), db, logger)).to.equal(running);
    expect(db.resizePool.called).to.equal(false);
    expect(lines[0]?.msg).to.equal('configuration reload failed: nothing changed');
    expect(JSON.stringify(lines[0]?.issues)).to.match(/maxOpenConns/);
    expect(reloadConfig(running, () => load({ DB_MAX_OPEN_CONNS: '5' }), db, logger)).to.equal(running);
    expect(lines.at(-1)?.msg).to.match(/refused the new size/);
  });
});
