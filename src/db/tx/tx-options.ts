import type { TransactionConfig } from '../../config/app-config.js';
import { DEFAULTS } from '../../config/defaults.js';
import {
  ISOLATION_LEVELS,
  PROPAGATIONS,
  TX_TARGETS,
  type IsolationLevel,
  type Propagation,
  type TxOptions,
  type TxTarget,
} from '../database.js';
import { TxOptionsError } from '../errors/errors.js';
import { isCommitToken, lsnValue } from '../replicas/commit-token.js';

/** setTimeout's ceiling; a longer timeout would fire at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

const KNOWN_KEYS = new Set([
  'isolationLevel',
  'readOnly',
  'deferrable',
  'timeoutMs',
  'retry',
  'propagation',
  'idempotent',
  'target',
  'after',
  'settings',
]);
/** A setting name as PostgreSQL spells one: `search_path`, or a custom `app.tenant_id` (letters, digits, `_`, `$`, dotted parts). */
const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)*$/;
/** Longest setting name accepted (PostgreSQL's own names are far shorter). */
const MAX_SETTING_NAME = 128;
const RETRY_KEYS = new Set(['maxAttempts', 'baseDelayMs', 'maxDelayMs']);

/** Retry settings with every default filled in; `maxAttempts` 1 means no retry. */
export interface ResolvedRetry {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** TxOptions after validation, with the manager's defaults applied. */
export interface ResolvedTxOptions {
  /** Undefined: the server's default_transaction_isolation (a plain BEGIN). */
  isolationLevel: IsolationLevel | undefined;
  readOnly: boolean;
  deferrable: boolean;
  /** Undefined: no deadline. */
  timeoutMs: number | undefined;
  retry: ResolvedRetry;
  propagation: Propagation;
  idempotent: boolean;
  /** Where it runs ('primary' unless a read-only transaction asked for 'replica'). */
  target: TxTarget;
  /** The `after` token as a comparable WAL position; undefined when none was given. */
  after: bigint | undefined;
  /** `settings` as validated name/value pairs (values as text); empty when none. */
  settings: ReadonlyArray<readonly [string, string]>;
  /** Which keys the caller set (joining checks only what was asked for). */
  explicit: ReadonlySet<keyof TxOptions>;
}

/** The manager's defaults (TransactionConfig subset), ms. */
export type TxDefaults = Pick<TransactionConfig, 'maxAttempts' | 'baseDelay' | 'maxDelay' | 'defaultTimeout'>;

/** The configuration's defaults (`config/defaults.ts`, `database.transactions`): 3 attempts, 20 ms base, 1 s cap, no timeout. */
export const DEFAULT_TX_DEFAULTS: TxDefaults = {
  maxAttempts: DEFAULTS.database.transactions.maxAttempts,
  baseDelay: DEFAULTS.database.transactions.baseDelay,
  maxDelay: DEFAULTS.database.transactions.maxDelay,
  defaultTimeout: DEFAULTS.database.transactions.defaultTimeout,
};

/**
 * Validates TxOptions and fills in defaults. Runs before any connection is taken, so a bad
 * option costs nothing. Every problem is reported at once.
 *
 * `timeoutMs: 0` means "no deadline" (it overrides a configured `defaultTimeout`).
 * @throws TxOptionsError for unknown keys, an unknown isolation level or propagation,
 *   `deferrable` without serializable + readOnly, a negative/non-finite/too large timeout,
 *   or retry settings that are not whole/non-negative numbers.
 */
export function resolveTxOptions(
  opts: unknown,
  defaults: TxDefaults = DEFAULT_TX_DEFAULTS,
): ResolvedTxOptions {
  if (opts === undefined || opts === null) opts = {};
  if (typeof opts !== 'object' || Array.isArray(opts))
    throw new TxOptionsError('TxOptions must be an object.');
  const o = opts as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of Object.keys(o))
    if (!KNOWN_KEYS.has(key) && o[key] !== undefined) problems.push(`unknown option "${key}"`);

  const isolationLevel = o.isolationLevel as IsolationLevel | undefined;
  if (isolationLevel !== undefined && !ISOLATION_LEVELS.includes(isolationLevel))
    problems.push(`isolationLevel must be one of ${ISOLATION_LEVELS.join(', ')}`);
  const propagation = (o.propagation ?? 'required') as Propagation;
  if (!PROPAGATIONS.includes(propagation))
    problems.push(`propagation must be one of ${PROPAGATIONS.join(', ')}`);
  for (const key of ['readOnly', 'deferrable', 'idempotent'] as const)
    if (o[key] !== undefined && typeof o[key] !== 'boolean') problems.push(`${key} must be a boolean`);
  if (o.deferrable === true && !(isolationLevel === 'serializable' && o.readOnly === true))
    problems.push('deferrable needs isolationLevel "serializable" and readOnly: true');

  let timeoutMs: number | undefined = defaults.defaultTimeout > 0 ? defaults.defaultTimeout : undefined;
  if (o.timeoutMs !== undefined) {
    const t = o.timeoutMs;
    if (typeof t !== 'number' || !Number.isFinite(t) || t < 0 || t > MAX_TIMEOUT_MS)
      problems.push(`timeoutMs must be a number of milliseconds between 0 and ${MAX_TIMEOUT_MS}`);
    else timeoutMs = t > 0 ? t : undefined;
  }

  const target = (o.target ?? 'primary') as TxTarget;
  if (!TX_TARGETS.includes(target)) problems.push(`target must be one of ${TX_TARGETS.join(', ')}`);
  if (o.after !== undefined && !isCommitToken(o.after))
    problems.push('after must be a commit token from lastCommitToken() (a WAL position such as "0/16B3748")');
  for (const key of ['target', 'after'] as const)
    if (o[key] !== undefined && o.readOnly !== true)
      problems.push(
        `${key} is for read-only transactions only (use withReadOnlyTransaction or readOnly: true)`,
      );

  const settings = resolveSettings(o.settings, problems);
  const retry = resolveRetry(o.retry, defaults, problems);
  if (problems.length > 0) throw new TxOptionsError(`Invalid transaction options: ${problems.join('; ')}.`);
  return {
    isolationLevel,
    readOnly: o.readOnly === true,
    deferrable: o.deferrable === true,
    timeoutMs,
    retry,
    propagation,
    idempotent: o.idempotent === true,
    target,
    after: lsnValue(o.after),
    settings,
    explicit: new Set(Object.keys(o).filter((k) => o[k] !== undefined) as (keyof TxOptions)[]),
  };
}

const NO_SETTINGS: ReadonlyArray<readonly [string, string]> = Object.freeze([]);

function resolveSettings(value: unknown, problems: string[]): ReadonlyArray<readonly [string, string]> {
  if (value === undefined) return NO_SETTINGS;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.push('settings must be an object of setting names to values');
    return NO_SETTINGS;
  }
  const out: Array<readonly [string, string]> = [];
  for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
    if (name.length > MAX_SETTING_NAME || !SETTING_NAME.test(name)) {
      problems.push(
        `settings name ${JSON.stringify(name.slice(0, MAX_SETTING_NAME))} is not a setting name (letters, digits, _ and $, dotted as in "app.tenant_id")`,
      );
      continue;
    }
    const text =
      typeof v === 'string'
        ? v
        : typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))
          ? String(v)
          : undefined;
    if (text === undefined)
      problems.push(`settings "${name}" must be a string, a finite number or a boolean`);
    // PostgreSQL text cannot hold NUL; the literal would be cut there.
    else if (text.includes('\0')) problems.push(`settings "${name}" must not contain a NUL character`);
    else out.push([name, text]);
  }
  return out.length === 0 ? NO_SETTINGS : out;
}

function resolveRetry(value: unknown, d: TxDefaults, problems: string[]): ResolvedRetry {
  const fallback = { maxAttempts: d.maxAttempts, baseDelayMs: d.baseDelay, maxDelayMs: d.maxDelay };
  if (value === undefined || value === true) return fallback;
  if (value === false) return { ...fallback, maxAttempts: 1 };
  if (typeof value !== 'object' || value === null) {
    problems.push('retry must be false or an object');
    return fallback;
  }
  const r = value as Record<string, unknown>;
  for (const key of Object.keys(r)) if (!RETRY_KEYS.has(key)) problems.push(`unknown option "retry.${key}"`);
  const num = (key: string, min: number, dflt: number, whole: boolean): number => {
    const v = r[key];
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (whole && !Number.isInteger(v))) {
      problems.push(`retry.${key} must be ${whole ? 'a whole number' : 'a number'} >= ${min}`);
      return dflt;
    }
    return v;
  };
  const out = {
    maxAttempts: num('maxAttempts', 1, fallback.maxAttempts, true),
    baseDelayMs: num('baseDelayMs', 0, fallback.baseDelayMs, false),
    maxDelayMs: num('maxDelayMs', 0, fallback.maxDelayMs, false),
  };
  if (out.maxDelayMs < out.baseDelayMs) problems.push('retry.maxDelayMs must be >= retry.baseDelayMs');
  return out;
}

/** What a running transaction guarantees, for joining checks. */
export interface TxTraits {
  /** The level in force (the server's default already looked up when BEGIN named none). */
  isolationLevel: IsolationLevel;
  readOnly: boolean;
  deferrable: boolean;
  /** Absolute deadline (performance.now() clock), if any. */
  deadline: number | undefined;
}

/**
 * Checks that a `required` or `nested` call can run inside `outer` without silently dropping
 * what it asked for. Only options the caller set are checked: a different isolation level,
 * `readOnly: false` inside a read-only transaction, `deferrable` that differs, or a `timeoutMs`
 * tighter than the outer deadline (which could not be honoured on a shared connection).
 * Read-only work inside a read-write transaction is allowed (it only reads).
 * @returns every conflict as a short phrase; empty when the call may join.
 */
export function joinConflicts(outer: TxTraits, inner: ResolvedTxOptions, now: number): string[] {
  const conflicts: string[] = [];
  if (inner.explicit.has('isolationLevel') && inner.isolationLevel !== outer.isolationLevel)
    conflicts.push(`isolationLevel "${inner.isolationLevel}" inside a "${outer.isolationLevel}" transaction`);
  if (inner.explicit.has('readOnly') && !inner.readOnly && outer.readOnly)
    conflicts.push('read-write work inside a read-only transaction');
  if (inner.explicit.has('deferrable') && inner.deferrable !== outer.deferrable)
    conflicts.push('a different deferrable mode');
  if (inner.timeoutMs !== undefined && inner.explicit.has('timeoutMs')) {
    const innerDeadline = now + inner.timeoutMs;
    if (outer.deadline === undefined || innerDeadline < outer.deadline)
      conflicts.push(`timeoutMs ${inner.timeoutMs} tighter than the outer transaction's deadline`);
  }
  return conflicts;
}
