import { expect } from 'chai';
import pino from 'pino';
import type { Database } from '../../../../src/db/database.js';
import { TxOptionsError } from '../../../../src/db/errors/errors.js';
import { DecisionLog } from '../../../../src/db/two-phase/decision-log.js';
import { GID_PREFIX, gidOf, globalIdOf, parseGid } from '../../../../src/db/two-phase/gid.js';
import { recoveryAction } from '../../../../src/db/two-phase/two-phase-recovery.js';
import { TwoPhaseCommit } from '../../../../src/db/two-phase/two-phase-commit.js';

const logger = pino({ level: 'silent' });
// Never touched: the constructor only remembers its databases.
const db = {} as Database;

describe('two-phase commit gids', () => {
  it('carry the prefix, the coordinator, its transaction id and the participant index, and parse back', () => {
    const gid = gidOf('0a1b2c3d', '7351', 2);
    expect(gid).to.equal('pgdl2pc_0a1b2c3d_7351_2');
    expect(gid.startsWith(GID_PREFIX)).to.equal(true);
    expect(gid.startsWith(globalIdOf('0a1b2c3d', '7351'))).to.equal(true);
    expect(parseGid(gid)).to.deep.equal({ coordinator: '0a1b2c3d', xid: '7351', index: 2 });
  });

  it('parse nothing that is not exactly ours, so no other literal is ever put in a statement', () => {
    for (const gid of [
      'someone_else',
      'pgdl2pc_0a1b2c3d_7351',
      "pgdl2pc_0a1b2c3d_1_0'; drop table x; --",
      'pgdl2pc_ZZ1b2c3d_1_0',
    ])
      expect(parseGid(gid), gid).to.equal(undefined);
  });
});

describe('recoveryAction()', () => {
  it('commits what the coordinator committed and rolls back what it aborted, whatever the age', () => {
    expect(recoveryAction('committed', 0, 60_000)).to.equal('commit');
    expect(recoveryAction('aborted', 0, 60_000)).to.equal('rollback');
  });

  it('never decides for a coordinator still in progress, however old', () => {
    expect(recoveryAction('in progress', 3_600_000, 60_000)).to.equal('wait');
  });

  it('rolls back an undecided transaction the server no longer knows about only past the grace period', () => {
    expect(recoveryAction(null, 59_999, 60_000)).to.equal('wait');
    expect(recoveryAction(null, 60_001, 60_000)).to.equal('rollback');
  });
});

describe('new TwoPhaseCommit()', () => {
  it('refuses no participants, no coordinator and invalid numbers with TxOptionsError naming them', () => {
    expect(() => new TwoPhaseCommit({}, { logger, coordinator: db })).to.throw(
      TxOptionsError,
      /at least one participant/,
    );
    expect(() => new TwoPhaseCommit({ a: db }, { logger } as never)).to.throw(TxOptionsError, /coordinator/);
    expect(() => new TwoPhaseCommit({ a: db }, { logger, coordinator: db, commitAttempts: 0 })).to.throw(
      TxOptionsError,
      /commitAttempts/,
    );
    expect(() => new TwoPhaseCommit({ a: db }, { logger, coordinator: db, gracePeriodMs: -1 })).to.throw(
      TxOptionsError,
      /gracePeriodMs/,
    );
  });

  it('refuses a decision table name that is not a plain SQL name', () => {
    expect(() => new DecisionLog(db, 'decisions; drop table users')).to.throw(
      TxOptionsError,
      /decisionTable/,
    );
    expect(new DecisionLog(db, 'ops.pgdl_decisions').table).to.equal('ops.pgdl_decisions');
  });
});
