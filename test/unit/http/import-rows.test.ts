import { expect } from 'chai';
import { parseImportRows, RowLines, type ImportFormat } from '../../../src/http/import-rows.js';
import { ImportRowError } from '../../../src/http/request-errors.js';

function* chunksOf(text: string, size: number): Generator<Buffer> {
  const bytes = Buffer.from(text, 'utf8');
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function parse(
  text: string,
  format: ImportFormat,
  chunkSize = 3,
  maxRowBytes = 1_000,
): Promise<{ rows: unknown[]; lines: RowLines }> {
  const lines = new RowLines();
  const rows: unknown[] = [];
  for await (const row of parseImportRows(chunksOf(text, chunkSize), format, lines, maxRowBytes))
    rows.push(row);
  return { rows, lines };
}

async function parseError(text: string, format: ImportFormat, maxRowBytes = 1_000): Promise<ImportRowError> {
  try {
    await parse(text, format, 3, maxRowBytes);
  } catch (err) {
    expect(err).to.be.instanceOf(ImportRowError);
    return err as ImportRowError;
  }
  throw new Error('expected an ImportRowError');
}

describe('parseImportRows()', () => {
  describe('NDJSON', () => {
    it('yields one value per line across chunk boundaries, split multi-byte characters included', async () => {
      const { rows, lines } = await parse('{"name":"Zoë 🚀"}\r\n{"name":"b"}\n{"name":"c"}', 'ndjson', 2);
      expect(rows).to.deep.equal([{ name: 'Zoë 🚀' }, { name: 'b' }, { name: 'c' }]);
      expect([0, 1, 2].map((i) => lines.lineOf(i))).to.deep.equal([1, 2, 3]);
    });

    it('skips blank lines and keeps each row on its own line number', async () => {
      const { rows, lines } = await parse('\n{"a":1}\n\n  \n{"a":2}\n', 'ndjson');
      expect(rows).to.deep.equal([{ a: 1 }, { a: 2 }]);
      expect(lines.lineOf(0)).to.equal(2);
      expect(lines.lineOf(1)).to.equal(5);
      expect(lines.lineOf(2)).to.equal(undefined);
    });

    it('names the line of malformed JSON without echoing it', async () => {
      const err = await parseError('{"a":1}\n{"a":2}\n{"a":secret-value}\n{"a":4}\n', 'ndjson');
      expect(err.line).to.equal(3);
      expect(err.message).to.equal('Import row on line 3 is not valid JSON.');
    });

    it('refuses a row longer than the row limit, also before its line ends', async () => {
      const err = await parseError(`{"a":1}\n{"a":"${'x'.repeat(100)}`, 'ndjson', 50);
      expect(err.line).to.equal(2);
      expect(err.message).to.match(/larger than the row limit/);
    });
  });

  describe('JSON array', () => {
    it('yields each element, with brackets, commas and escaped quotes inside strings', async () => {
      const text = '[{"name":"a, [b] {c} \\"d\\""},{"tags":[1,{"x":"]"}]}, "str", 7]';
      const { rows } = await parse(text, 'json-array', 4);
      expect(rows).to.deep.equal([{ name: 'a, [b] {c} "d"' }, { tags: [1, { x: ']' }] }, 'str', 7]);
    });

    it('records the line each element starts on in a pretty-printed array', async () => {
      const text = '[\n  {\n    "a": 1\n  },\n  {\n    "a": 2\n  }\n]\n';
      const { rows, lines } = await parse(text, 'json-array');
      expect(rows).to.deep.equal([{ a: 1 }, { a: 2 }]);
      expect([lines.lineOf(0), lines.lineOf(1)]).to.deep.equal([2, 5]);
    });

    it('accepts an empty array', async () => {
      expect((await parse(' [ ] ', 'json-array')).rows).to.deep.equal([]);
    });

    it('names the line of a malformed element, a trailing comma, trailing content and a missing bracket', async () => {
      expect((await parseError('[\n{"a":1},\n{"a":}\n]', 'json-array')).line).to.equal(3);
      expect((await parseError('[{"a":1},\n]', 'json-array')).line).to.equal(2);
      expect((await parseError('[{"a":1}]\n[', 'json-array')).message).to.match(/after the end of the array/);
      expect((await parseError('[{"a":1},\n{"a":2}', 'json-array')).message).to.match(
        /before the array is closed/,
      );
      expect((await parseError('{"a":1}', 'json-array')).message).to.match(/must be a JSON array/);
    });

    it('refuses an element larger than the row limit', async () => {
      const err = await parseError(`[{"a":1},\n{"a":"${'x'.repeat(100)}"}]`, 'json-array', 50);
      expect(err.line).to.equal(2);
    });
  });
});

describe('RowLines', () => {
  it('keeps one breakpoint per change of offset and maps every row back to its line', () => {
    const lines = new RowLines();
    const starts = [1, 2, 3, 7, 8, 20, 21, 22];
    for (const line of starts) lines.push(line);
    expect(starts.map((_, i) => lines.lineOf(i))).to.deep.equal(starts);
    expect(lines.count).to.equal(8);
    expect(lines.lineOf(-1)).to.equal(undefined);
  });
});
