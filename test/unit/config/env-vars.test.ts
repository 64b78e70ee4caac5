import { expect } from 'chai';
import { DEFAULTS, ENV_VARS, loadConfig } from '../../../src/config/index.js';
import { getPath, isPlainObject } from '../../../src/config/merge-layers.js';

/** Every leaf key path of an object. */
function leafPaths(node: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(node).flatMap(([key, value]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    return isPlainObject(value) ? leafPaths(value, path) : [path];
  });
}

describe('ENV_VARS', () => {
  it('maps every configuration key from exactly one variable', () => {
    expect(Object.values(ENV_VARS)).to.have.members(leafPaths(DEFAULTS));
  });

  it('delivers each variable to its key', () => {
    for (const [name, path] of Object.entries(ENV_VARS)) {
      const fallback = getPath(DEFAULTS, path);
      // A value that differs from the default and is valid for the key's type and range
      // (one less, so that no "at most" rule trips; half of a fraction, which also proves decimals parse).
      const value =
        typeof fallback === 'boolean'
          ? String(!fallback)
          : typeof fallback === 'number'
            ? String(
                Number.isInteger(fallback) ? (fallback >= 1 ? fallback - 1 : fallback + 1) : fallback / 2,
              )
            : null;
      if (value === null) continue; // strings: covered by the enum/string tests elsewhere
      const config = loadConfig({
        env: { [name]: value },
        envFile: false,
        configDir: 'no-such-dir',
        profile: 'qa',
      });
      expect(getPath(JSON.parse(JSON.stringify(config)), path), name).to.equal(JSON.parse(value));
    }
  });
});
