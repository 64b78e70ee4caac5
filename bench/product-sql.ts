import type { UserRepository } from '../src/users/user-repository.js';
import { sentQueries } from './sent-statements.js';

/** A statement as pg received it, with a way to bind new values in the same places. */
export interface CapturedStatement {
  text: string;
  /** The values for `text` with each marker value replaced by the caller's. */
  bind: (values: Readonly<Record<string, unknown>>) => unknown[];
}

/**
 * The one statement `fn` sends, with its values turned into a template: every value equal to
 * one of `markers` (compared as pg sends them, i.e. as strings) is rebound by name, every other
 * value (a literal such as `limit 1`) is kept. Throws unless exactly one statement is sent and
 * every marker is found, so raw pg never silently sends something other than the product.
 */
async function captureOne(
  what: string,
  markers: Readonly<Record<string, unknown>>,
  fn: () => PromiseLike<unknown>,
): Promise<CapturedStatement> {
  const sent = await sentQueries(fn);
  if (sent.length !== 1) throw new Error(`${what}: expected one statement, got ${JSON.stringify(sent)}`);
  const { text, values } = sent[0]!;
  const byValue = new Map(Object.entries(markers).map(([k, v]) => [String(v), k]));
  const slots = values.map((v) => byValue.get(String(v)));
  for (const k of Object.keys(markers))
    if (!slots.includes(k))
      throw new Error(`${what}: ${k} is not bound in ${text} ${JSON.stringify(values)}`);
  return {
    text,
    bind: (given) => slots.map((k, i) => (k === undefined ? values[i] : given[k])),
  };
}

/** The repository's SQL for the paths raw pg and pg-promise mirror. */
export interface ProductSql {
  /** `getById`: markers `id`. */
  read: CapturedStatement;
  /** `create`: markers `email`, `name`, `status`. */
  insert: CapturedStatement;
  /** `update(id, { name }, version)`: markers `name`, `id`, `version`. */
  update: CapturedStatement;
}

/**
 * Learns the statements `UserRepository` sends for getById, create and update(name), on user
 * `id` (which must exist and is renamed, its version bumped). Outside any transaction, so only
 * the statement itself is seen.
 */
export async function captureProductSql(repo: UserRepository, id: string): Promise<ProductSql> {
  const read = await captureOne('getById', { id }, () => repo.getById(id));
  const user = await repo.getById(id);
  const name = 'bench capture name';
  const update = await captureOne('update', { name, id, version: user.version }, () =>
    repo.update(id, { name }, user.version),
  );
  const email = `bench-capture-${process.pid}-${Date.now()}@example.com`;
  const insert = await captureOne('create', { email, name: 'Bench Capture', status: 'suspended' }, () =>
    repo.create({ email, name: 'Bench Capture', status: 'suspended' }),
  );
  return { read, insert, update };
}
