import { expect } from 'chai';
import {
  ImportProgress,
  parseImportRows,
  RowLines,
  type ImportFormat,
} from '../../../src/http/import-rows.js';
import { ImportTooLargeError } from '../../../src/http/request-errors.js';

/**
 * Feeds `chunks` one at a time and records `progress.rowBytes` after each chunk has been taken
 * in (the moment the upload limiter reads it, before waiting for the next one).
 */
async function creditAfterEachChunk(chunks: string[], format: ImportFormat): Promise<number[]> {
  const progress = new ImportProgress();
  const seen: number[] = [];
  function* body(): Generator<Buffer> {
    for (const chunk of chunks) {
      yield Buffer.from(chunk);
      seen.push(progress.rowBytes);
    }
  }
  for await (const _row of parseImportRows(body(), format, new RowLines(), 10_000, { progress })) {
    // rows are not needed here
  }
  return seen;
}

describe('ImportProgress: only bytes that become rows count', () => {
  it('credits nothing for NDJSON blank lines, however many', async () => {
    const credit = await creditAfterEachChunk(
      Array.from({ length: 50 }, () => '\n \r\n\t\n'),
      'ndjson',
    );
    expect(credit.at(-1)).to.equal(0);
  });

  it('credits each NDJSON row in full once it is complete, and a row in progress up to its last non-blank character', async () => {
    const row = '{"email":"a@example.com","name":"A"}';
    const credit = await creditAfterEachChunk(
      ['\n\n', row.slice(0, 10), '     ', row.slice(10), '\n\n\n'],
      'ndjson',
    );
    expect(credit).to.deep.equal([0, 10, 10, row.length + 5, row.length + 5]);
  });

  it('counts bytes, not characters, of a multi-byte row', async () => {
    const row = '{"name":"Zoë ✓"}';
    const credit = await creditAfterEachChunk([row + '\n'], 'ndjson');
    expect(credit).to.deep.equal([Buffer.byteLength(row)]);
  });

  it('credits nothing for whitespace before, between and after JSON array elements', async () => {
    const credit = await creditAfterEachChunk(
      ['[', ...Array.from({ length: 20 }, () => ' \n\t'), '1', '   ', ',', '  \n', '2', ']', '  \n  '],
      'json-array',
    );
    expect(credit.slice(0, 21).every((c) => c === 0)).to.equal(true);
    expect(credit.at(-1)).to.equal(2 + 3); // "1   " (trailing blanks counted once the element ends) and "2"
  });
});

describe('parseImportRows() maxRows', () => {
  it('throws ImportTooLargeError naming maxRows at the row past the cap', async () => {
    const lines = new RowLines();
    const rows: unknown[] = [];
    try {
      for await (const row of parseImportRows(['1\n2\n3\n4\n'], 'ndjson', lines, 100, { maxRows: 3 }))
        rows.push(row);
      expect.fail('no error');
    } catch (err) {
      expect(err).to.be.instanceOf(ImportTooLargeError);
      expect(err).to.include({ limit: 'maxRows', bound: 3, code: 'IMPORT_TOO_LARGE' });
      expect((err as Error).message).to.include('server.import.maxRows');
    }
    expect(rows).to.deep.equal([1, 2, 3]);
  });

  it('takes exactly maxRows rows', async () => {
    const rows: unknown[] = [];
    for await (const row of parseImportRows(['[1,2,3]'], 'json-array', new RowLines(), 100, { maxRows: 3 }))
      rows.push(row);
    expect(rows).to.deep.equal([1, 2, 3]);
  });
});
