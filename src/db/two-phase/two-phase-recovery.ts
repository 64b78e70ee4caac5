import type { Logger } from '../../observability/logger.js';
import type { Database } from '../database.js';
import type { DecisionLog, DecisionStatus } from './decision-log.js';
import { globalIdOf, parseGid } from './gid.js';
import { finishPrepared, listPrepared, type PreparedXact } from './prepared-xacts.js';

/** What `TwoPhaseCommit.recover()` did. */
export interface RecoveryResult {
  /** Gids committed by this call (their decision record said commit). */
  committed: string[];
  /** Gids rolled back by this call (no decision, and the coordinator gave up or is long gone). */
  rolledBack: string[];
  /** Gids left in doubt: their coordinator is still deciding, or they are younger than the grace period. */
  pending: string[];
}

/** One prepared transaction of ours, as `TwoPhaseCommit.inDoubt()` reports it. */
export interface InDoubtTransaction {
  participant: string;
  gid: string;
  /** The unit of work's id, shared by its gids. */
  globalId: string;
  /** ISO-8601, the participant server's clock. */
  preparedAt: string;
  /** How long it has been in doubt, ms. */
  ageMs: number;
  /** True when the commit was decided (recover() will commit it); false: still undecided. */
  decided: boolean;
}

/** What recovery works on (one TwoPhaseCommit's). */
export interface RecoveryScope {
  participants: ReadonlyArray<readonly [string, Database]>;
  log: DecisionLog;
  coordinatorTag: string;
}

/** One participant's prepared transactions of this coordinator, each with its coordinator xid. */
async function preparedOf(
  db: Database,
  coordinatorTag: string,
): Promise<Array<PreparedXact & { xid: string }>> {
  const out: Array<PreparedXact & { xid: string }> = [];
  for (const p of await listPrepared(db.driver())) {
    const parts = parseGid(p.gid);
    if (parts?.coordinator === coordinatorTag) out.push({ ...p, xid: parts.xid });
  }
  return out;
}

/**
 * Resolves every in-doubt transaction of this coordinator on every participant (see
 * `TwoPhaseCommit.recover()`). The decision records are read before the participants are
 * listed: a record is committed only after all its gids were prepared, so a record none of
 * whose gids is still prepared after this pass (not listed, or committed by it) belongs to a
 * unit of work finished everywhere, and is removed.
 */
export async function recoverAll(
  scope: RecoveryScope & { gracePeriodMs: number; logger: Logger },
): Promise<RecoveryResult> {
  const { log, logger, coordinatorTag, gracePeriodMs } = scope;
  const records = await log.records();
  const result: RecoveryResult = { committed: [], rolledBack: [], pending: [] };
  /** Coordinator xids with a gid still prepared after this pass: their records stay. */
  const unfinished = new Set<string>();
  const done = new Set<string>();
  let complete = true;
  for (const [name, db] of scope.participants) {
    let prepared: Array<PreparedXact & { xid: string }>;
    try {
      prepared = await preparedOf(db, coordinatorTag);
    } catch (err) {
      complete = false;
      logger.warn(
        { participant: name, err: (err as Error).message },
        'recovery: participant unreachable; skipped',
      );
      continue;
    }
    const undecided = [...new Set(prepared.filter((p) => !records.has(p.xid)).map((p) => p.xid))];
    // Asked after the records were read: a coordinator that committed meanwhile says 'committed'.
    const status = await log.statusOf(undecided);
    for (const p of prepared) {
      if (done.has(p.gid)) continue; // the same database listed twice (two participant handles)
      const action = recoveryAction(
        records.has(p.xid) ? 'committed' : (status.get(p.xid) ?? null),
        p.ageMs,
        gracePeriodMs,
      );
      if (action === 'wait') {
        result.pending.push(p.gid);
        unfinished.add(p.xid);
        continue;
      }
      try {
        // false: finished meanwhile by someone else (the unit of work itself, another recovery).
        if (await finishPrepared(db.driver(), p.gid, action)) {
          (action === 'commit' ? result.committed : result.rolledBack).push(p.gid);
          logger.info({ participant: name, gid: p.gid, action }, 'recovery: in-doubt transaction resolved');
        }
        done.add(p.gid);
      } catch (err) {
        result.pending.push(p.gid);
        unfinished.add(p.xid);
        logger.warn(
          { participant: name, gid: p.gid, err: (err as Error).message },
          'recovery: could not resolve',
        );
      }
    }
  }
  const names = new Set(scope.participants.map(([name]) => name));
  const finished = [...records.values()]
    .filter((r) => complete && !unfinished.has(r.xid) && r.participants.every((p) => names.has(p)))
    .map((r) => r.xid);
  await log.remove(finished);
  return result;
}

/** What to do with one prepared transaction, given what is known of its coordinator transaction. */
export function recoveryAction(
  status: DecisionStatus,
  ageMs: number,
  gracePeriodMs: number,
): 'commit' | 'rollback' | 'wait' {
  if (status === 'committed') return 'commit';
  if (status === 'aborted') return 'rollback';
  if (status === 'in progress') return 'wait';
  // Unknown to the coordinator's server (the clog no longer reaches that far back): no record
  // means no commit decision, but give a coordinator racing with us the grace period.
  return ageMs > gracePeriodMs ? 'rollback' : 'wait';
}

/** Every prepared transaction of this coordinator, oldest first (see `TwoPhaseCommit.inDoubt()`). */
export async function inDoubtOf(
  scope: RecoveryScope & { olderThanMs: number },
): Promise<InDoubtTransaction[]> {
  const records = await scope.log.records();
  const all: InDoubtTransaction[] = [];
  const gids = new Set<string>();
  for (const [name, db] of scope.participants) {
    for (const p of await preparedOf(db, scope.coordinatorTag)) {
      if (p.ageMs < scope.olderThanMs || gids.has(p.gid)) continue;
      gids.add(p.gid);
      all.push({
        participant: name,
        gid: p.gid,
        globalId: globalIdOf(scope.coordinatorTag, p.xid),
        preparedAt: p.preparedAt.toISOString(),
        ageMs: Math.round(p.ageMs),
        decided: records.has(p.xid),
      });
    }
  }
  return all.sort((a, b) => b.ageMs - a.ageMs || a.participant.localeCompare(b.participant));
}
