import { expect } from 'chai';
import type { Knex } from 'knex';
import type { TcpProxy } from './tcp-proxy.js';
import { withoutOrigin } from './without-origin.js';

/**
 * The statements knex reports (its 'query' event) while `fn` runs, internal ones included,
 * checked against what reached the server through `proxy`: a statement sent past knex (on the
 * raw connection) would be missing from knex's list, so the two counts must agree. Texts come
 * without BEGIN's origin columns (`withoutOrigin`).
 */
export async function statementsOf(
  knex: Knex,
  proxy: TcpProxy,
  fn: () => Promise<unknown>,
): Promise<string[]> {
  const sent: string[] = [];
  const onQuery = (q: { sql: string }): void => void sent.push(withoutOrigin(q.sql));
  const before = proxy.statementsSeen;
  knex.on('query', onQuery);
  try {
    await fn();
  } finally {
    knex.off('query', onQuery);
  }
  expect(proxy.statementsSeen - before, `statements at the server for ${JSON.stringify(sent)}`).to.equal(
    sent.length,
  );
  return sent;
}
