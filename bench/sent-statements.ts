import pg from 'pg';

type QueryFn = (...args: unknown[]) => unknown;

/**
 * The statements `fn` sends, as pg sees them: every `pg.Client#query` (knex's BEGIN/COMMIT
 * and the manager's internal statements count too), whitespace collapsed, cut at 80
 * characters. pg's prototype is patched only while `fn` runs: never during a measurement.
 * Run `fn` alone: whatever else queries meanwhile is counted too.
 */
export async function sentStatements(fn: () => PromiseLike<unknown>): Promise<string[]> {
  return (await sentQueries(fn)).map(({ text }) => text.replace(/\s+/g, ' ').slice(0, 80));
}

/** What `fn` handed to `pg.Client#query`: text and values (pg's prototype patched only while `fn` runs). */
export async function sentQueries(
  fn: () => PromiseLike<unknown>,
): Promise<Array<{ text: string; values: unknown[] }>> {
  const proto = pg.Client.prototype as unknown as { query: QueryFn };
  const original = proto.query;
  const sent: Array<{ text: string; values: unknown[] }> = [];
  proto.query = function (this: unknown, ...args: unknown[]) {
    const q = args[0] as string | { text?: string; values?: unknown[] } | undefined;
    if (typeof q === 'string') sent.push({ text: q, values: Array.isArray(args[1]) ? args[1] : [] });
    else sent.push({ text: q?.text ?? '?', values: q?.values ?? [] });
    return original.apply(this, args);
  };
  try {
    await fn();
  } finally {
    proto.query = original;
  }
  return sent;
}
