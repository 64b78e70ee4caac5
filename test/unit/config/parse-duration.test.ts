import { expect } from 'chai';
import { parseDuration } from '../../../src/config/parse-duration.js';

describe('parseDuration()', () => {
  const cases: Array<[unknown, number]> = [
    [0, 0],
    [250, 250],
    ['250', 250],
    ['500ms', 500],
    ['1.5s', 1_500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1m30s', 90_000],
    ['1h2m3s4ms', 3_723_004],
    ['0.1s', 100],
    [' 2s ', 2_000],
  ];
  for (const [input, ms] of cases) {
    it(`reads ${JSON.stringify(input)} as ${ms} ms`, () => {
      expect(parseDuration(input)).to.deep.equal({ ms });
    });
  }

  const invalid: Array<[unknown, RegExp]> = [
    ['', /empty/],
    ['5 sec', /expected a duration/],
    ['1d', /expected a duration/],
    ['100us', /expected a duration/],
    ['s', /expected a duration/],
    ['-5s', /negative/],
    [-1, /negative/],
    ['1.5ms', /whole number/],
    [1.5, /whole number/],
    [Number.POSITIVE_INFINITY, /finite/],
    [true, /expected a duration/],
    [null, /expected a duration/],
    [{ s: 1 }, /expected a duration/],
  ];
  for (const [input, message] of invalid) {
    it(`rejects ${typeof input === 'number' ? String(input) : JSON.stringify(input)} with an error sentence`, () => {
      const result = parseDuration(input);
      expect(result).to.have.property('error').that.matches(message);
    });
  }
});
