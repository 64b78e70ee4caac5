import type { Knex } from 'knex';
import { currentTransaction, TransactionStateError, type Executor } from '../db/index.js';

/** What a write did: `create`, `update`, `delete` or `import` (a bulk load of many rows). */
export const AUDIT_ACTIONS = ['create', 'update', 'delete', 'import'] as const;
/** One of `AUDIT_ACTIONS`. */
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** Who wrote, and within which request: the part of an audit record the caller knows. */
export interface AuditContext {
  /** The bearer token's `sub`; null (the default) when the write was not authenticated. */
  actor?: string | null;
  /** The HTTP request id (`x-request-id`), when the write came through the API. */
  requestId?: string;
}

/** One audit record: who (`AuditContext`), what, and when (the transaction's start, set by the database). */
export interface AuditEntry extends AuditContext {
  action: AuditAction;
  /** The kind of thing written, e.g. `user`. */
  entity: string;
  /** Its id; absent for an import. */
  entityId?: string;
  /** Names of the fields the write set, never their values (personal data stays out of the trail). */
  fields?: readonly string[];
  /** Rows an import wrote (imports only). */
  rowCount?: number;
}

/** A stored audit record, as `list` returns it. */
export interface AuditRecord {
  id: string;
  occurredAt: Date;
  actor: string | null;
  action: AuditAction;
  entity: string;
  entityId: string | null;
  fields: string[];
  rowCount: number | null;
  requestId: string | null;
}

/**
 * The audit trail (table `audit_log`): append-only records of writes, each inserted in the
 * transaction of the write it describes, so both commit or neither does. The application
 * role may insert and read, never update or delete (the migration revokes it, and a trigger
 * refuses it even to the owner).
 */
export class AuditRepository {
  readonly #knex: Knex;

  /** Reads and writes through `knex` (the ambient or an explicit transaction for `record`). */
  constructor(knex: Knex) {
    this.#knex = knex;
  }

  /**
   * Inserts one record in `executor`, else in this call chain's ambient transaction.
   * @throws TransactionStateError when there is neither: a record written outside the
   *   transaction of its write could outlive a write that rolled back, or be lost while the
   *   write commits.
   */
  async record(entry: AuditEntry, executor?: Knex.Transaction): Promise<void> {
    const trx = executor ?? currentTransaction();
    if (!trx)
      throw new TransactionStateError(
        'An audit record is written in the transaction of its write; none is open.',
      );
    await trx('audit_log').insert({
      actor: entry.actor ?? null,
      action: entry.action,
      entity: entry.entity,
      entity_id: entry.entityId ?? null,
      fields: [...(entry.fields ?? [])],
      row_count: entry.rowCount ?? null,
      request_id: entry.requestId ?? null,
    });
  }

  /** The records of one entity (or of every entity of its kind with `entityId` absent), oldest first. */
  async list(entity: string, entityId?: string, executor?: Executor): Promise<AuditRecord[]> {
    const ex = executor ?? currentTransaction() ?? this.#knex;
    const query = ex('audit_log').where({ entity }).orderBy('id');
    if (entityId !== undefined) void query.andWhere({ entity_id: entityId });
    const rows = (await query) as AuditRow[];
    return rows.map((row) => ({
      id: String(row.id),
      occurredAt: row.occurred_at,
      actor: row.actor,
      action: row.action,
      entity: row.entity,
      entityId: row.entity_id,
      fields: row.fields,
      rowCount: row.row_count,
      requestId: row.request_id,
    }));
  }
}

interface AuditRow {
  id: string | number;
  occurred_at: Date;
  actor: string | null;
  action: AuditAction;
  entity: string;
  entity_id: string | null;
  fields: string[];
  row_count: number | null;
  request_id: string | null;
}
