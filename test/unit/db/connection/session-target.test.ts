import { expect } from 'chai';
import sinon from 'sinon';
import {
  candidateHosts,
  connectPasses,
  sessionMatches,
  stillMatches,
} from '../../../../src/db/connection/session-target.js';
import { formatHostPort, parseHostPort } from '../../../../src/config/host-port.js';
import { classifyConnectError } from '../../../../src/db/errors/classify-error.js';

const PRIMARY = new Map([
  ['default_transaction_read_only', 'off'],
  ['in_hot_standby', 'off'],
]);
const STANDBY = new Map([
  ['default_transaction_read_only', 'off'],
  ['in_hot_standby', 'on'],
]);
const READ_ONLY_PRIMARY = new Map([
  ['default_transaction_read_only', 'on'],
  ['in_hot_standby', 'off'],
]);
const UNREPORTED = new Map<string, string>(); // a server before PostgreSQL 14

describe('session-target (libpq target_session_attrs)', () => {
  afterEach(() => sinon.restore());

  describe('sessionMatches()', () => {
    const noQuery = { query: () => Promise.reject(new Error('no query expected')) };
    const table: Array<[Parameters<typeof sessionMatches>[0], Map<string, string>, boolean]> = [
      ['any', STANDBY, true],
      ['read-write', PRIMARY, true],
      ['read-write', STANDBY, false],
      ['read-write', READ_ONLY_PRIMARY, false],
      ['read-only', READ_ONLY_PRIMARY, true],
      ['read-only', STANDBY, true],
      ['read-only', PRIMARY, false],
      ['primary', READ_ONLY_PRIMARY, true],
      ['primary', STANDBY, false],
      ['standby', STANDBY, true],
      ['standby', PRIMARY, false],
    ];
    for (const [mode, reported, expected] of table) {
      it(`${expected ? 'accepts' : 'refuses'} ${mode} for ${JSON.stringify([...reported.values()])} from the startup reports alone`, async () => {
        expect(await sessionMatches(mode, reported, noQuery)).to.equal(expected);
      });
    }

    it('asks the server when it reported nothing (before PostgreSQL 14), as libpq does', async () => {
      const query = sinon.stub();
      query.withArgs('show transaction_read_only').resolves({ rows: [{ transaction_read_only: 'on' }] });
      query.withArgs('select pg_is_in_recovery() as standby').resolves({ rows: [{ standby: true }] });
      expect(await sessionMatches('read-write', UNREPORTED, { query })).to.equal(false);
      expect(await sessionMatches('standby', UNREPORTED, { query })).to.equal(true);
      expect(query.callCount).to.equal(2);
    });
  });

  it('says a kept session no longer matches once a standby is promoted or a primary turns read-only', () => {
    expect(stillMatches('standby', PRIMARY)).to.equal(false);
    expect(stillMatches('read-write', READ_ONLY_PRIMARY)).to.equal(false);
    expect(stillMatches('read-write', PRIMARY)).to.equal(true);
    expect(stillMatches('primary', UNREPORTED)).to.equal(undefined);
  });

  it('makes prefer-standby two passes (standby, then any) and the others one', () => {
    expect(connectPasses('prefer-standby')).to.deep.equal(['standby', 'any']);
    expect(connectPasses('read-write')).to.deep.equal(['read-write']);
  });

  it('lists hosts in order, IPv6 in brackets, and host/port alone when hosts is empty', () => {
    expect(candidateHosts({ host: 'x', port: 1, hosts: ['a:5432', '[::1]:5433'] })).to.deep.equal([
      { host: 'a', port: 5432 },
      { host: '::1', port: 5433 },
    ]);
    expect(candidateHosts({ host: 'x', port: 1, hosts: [] })).to.deep.equal([{ host: 'x', port: 1 }]);
    expect(formatHostPort(parseHostPort('[::1]:5433'))).to.equal('[::1]:5433');
  });

  it('classifies "no host matched" as a transient connect failure', () => {
    const err = Object.assign(new Error('No host matched'), { code: 'NO_MATCHING_HOST' });
    expect(classifyConnectError(err)).to.include({ transient: true, reason: 'NO_MATCHING_HOST' });
  });
});
