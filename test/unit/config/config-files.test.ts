import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ENV_VARS, loadConfig, PROFILE_DEFAULTS, redactConfig } from '../../../src/config/index.js';
import { useTempConfigDir } from '../../support/temp-config-dir.js';

const CONFIG_DIR = path.resolve('config');
const read = (name: string) => readFileSync(path.join(CONFIG_DIR, name), 'utf8');

/** Turns the documented settings (`# key: value`, one space after the hash) into live YAML. */
const uncomment = (yaml: string) => yaml.replace(/^(\s*)# ([a-z][A-Za-z]*: .*)$/gm, '$1$2');

describe('config/*.yaml and .env.example', () => {
  const tmp = useTempConfigDir();
  const load = (profile: string, configDir: string) =>
    redactConfig(loadConfig({ env: {}, envFile: false, configDir, profile }));

  it('load as shipped for development and test', () => {
    expect(load('development', CONFIG_DIR).profile).to.equal('development');
    expect(load('test', CONFIG_DIR).profile).to.equal('test');
  });

  it('document exactly the built-in defaults in default.yaml', () => {
    tmp().write('default.yaml', uncomment(read('default.yaml')));
    expect(load('staging', tmp().dir)).to.deep.equal(load('staging', tmp().missing('none')));
  });

  for (const profile of Object.keys(PROFILE_DEFAULTS)) {
    it(`document exactly the built-in ${profile} adjustments in ${profile}.yaml`, () => {
      const env = profile === 'production' ? { DB_HOST: 'db', DB_PASSWORD: 'pw' } : {};
      tmp().write('check.yaml', uncomment(read(`${profile}.yaml`)));
      const fromFile = loadConfig({ env, envFile: false, configDir: tmp().dir, profile: 'check' });
      const builtIn = loadConfig({ env, envFile: false, configDir: tmp().missing('none'), profile });
      expect({ ...redactConfig(fromFile), profile }).to.deep.equal(redactConfig(builtIn));
    });
  }

  it('name every environment variable in default.yaml', () => {
    const yaml = read('default.yaml');
    for (const name of Object.keys(ENV_VARS)) expect(yaml).to.match(new RegExp(`[[ ]${name}[\\],]`));
  });

  it('ship a .env.example that loads', () => {
    const config = loadConfig({ env: {}, envFile: path.resolve('.env.example'), configDir: CONFIG_DIR });
    expect(config.profile).to.equal('development');
  });
});
