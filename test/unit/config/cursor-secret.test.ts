import { expect } from 'chai';
import { inspect } from 'node:util';
import { ConfigError, loadConfig, redactConfig, REDACTED } from '../../../src/config/index.js';
import { resolveCursorSecret } from '../../../src/config/cursor-secret.js';
import { useTempConfigDir } from '../../support/temp-config-dir.js';

const SECRET = 'a-cursor-secret-of-at-least-32-chars!';

describe('server.cursorSecret', () => {
  const tmp = useTempConfigDir();
  const load = (env: Record<string, string>, profile = 'development') =>
    loadConfig({ env, envFile: false, configDir: tmp().dir, profile });

  it('is set by SERVER_CURSOR_SECRET or SERVER_CURSOR_SECRET_FILE, and hidden like the passwords', () => {
    expect(load({ SERVER_CURSOR_SECRET: SECRET }).server.cursorSecret).to.equal(SECRET);
    const file = tmp().write('cursor_secret', `${SECRET}\n`);
    const config = load({ SERVER_CURSOR_SECRET_FILE: file });
    expect(config.server.cursorSecret).to.equal(SECRET);
    expect(JSON.stringify(config)).not.to.include(SECRET);
    expect(inspect(config, { depth: null, showHidden: true })).not.to.include(SECRET);
    expect(redactConfig(config).server.cursorSecret).to.equal(REDACTED);
    expect(redactConfig(load({})).server.cursorSecret).to.equal('');
  });

  it('refuses a key shorter than 32 characters without echoing it', () => {
    try {
      load({ SERVER_CURSOR_SECRET: 'short-secret' });
      expect.fail('no error');
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      const text = (err as ConfigError).message;
      expect(text).to.include('server.cursorSecret: must be at least 32 characters');
      expect(text).not.to.include('short-secret');
    }
  });

  describe('resolveCursorSecret()', () => {
    it('uses the configured key', () => {
      expect(resolveCursorSecret(load({ SERVER_CURSOR_SECRET: SECRET }))).to.deep.equal({
        secret: SECRET,
        generated: false,
      });
    });

    it('makes a random per-process key outside production', () => {
      const a = resolveCursorSecret(load({}));
      const b = resolveCursorSecret(load({}));
      expect(a.generated).to.equal(true);
      expect(a.secret).to.have.length.at.least(32);
      expect(a.secret).not.to.equal(b.secret);
    });

    it('refuses to start production without one, naming the variables', () => {
      const production = { APP_ENV: 'production', DB_HOST: 'db', DB_PASSWORD: 'pw' };
      expect(() => resolveCursorSecret(load(production, 'production')))
        .to.throw(ConfigError)
        .with.property('message')
        .that.includes('SERVER_CURSOR_SECRET or SERVER_CURSOR_SECRET_FILE');
      expect(
        resolveCursorSecret(load({ ...production, SERVER_CURSOR_SECRET: SECRET }, 'production')).secret,
      ).to.equal(SECRET);
    });
  });
});
