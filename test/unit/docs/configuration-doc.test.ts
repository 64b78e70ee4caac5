import { expect } from 'chai';
import { ENV_VARS } from '../../../src/index.js';
import { readRepoFile, tablesAfter, unquote } from './markdown.js';

describe('docs/configuration.md', () => {
  const rows = tablesAfter(readRepoFile('docs/configuration.md'), 'config:env-vars').flat();
  const documented = new Map(rows.map(([variable = '', key = '']) => [unquote(variable), unquote(key)]));

  it('lists every variable of ENV_VARS with the key it sets, and no other', () => {
    const wrong = [
      ...Object.entries(ENV_VARS)
        .filter(([variable, key]) => documented.get(variable) !== key)
        .map(
          ([variable, key]) =>
            `${variable} -> ${key}: documented as ${documented.get(variable) ?? 'nothing'}`,
        ),
      ...[...documented.keys()]
        .filter((variable) => !(variable in ENV_VARS))
        .map((v) => `${v}: not in ENV_VARS`),
    ];
    expect(wrong).to.deep.equal([]);
  });
});
