import pg from 'pg';

type QueryFn = (...args: unknown[]) => unknown;

/**
 * The statements `fn` sends, as pg sees them: every `pg.Client#query` (knex's BEGIN/COMMIT
 * and the manager's internal statements count too), whitespace collapsed, cut at 80
 * characters. pg's prototype is patched only while `fn` runs: never during a measurement.
 * Run `fn` alone: whatever else queries meanwhile is counted too.
 */
export async function sentStatements(fn: () => PromiseLike<unknown>): Promise<string[]> {
  const proto = pg.Client.prototype as unknown as { query: QueryFn };
  const original = proto.query;
  const sent: string[] = [];
  proto.query = function (this: unknown, ...args: unknown[]) {
    const q = args[0] as string | { text?: string } | undefined;
    sent.push((typeof q === 'string' ? q : (q?.text ?? '?')).replace(/\s+/g, ' ').slice(0, 80));
    return original.apply(this, args);
  };
  try {
    await fn();
  } finally {
    proto.query = original;
  }
  return sent;
}
