import { expect } from 'chai';
import { parseImportRows, RowLines } from '../../../src/http/import-rows.js';
import { ImportRowError } from '../../../src/http/request-errors.js';
import { countLineFeeds, invalidUtf8Offset } from '../../../src/http/utf8.js';

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

describe('invalidUtf8Offset()', () => {
  it('is -1 for valid UTF-8, multi-byte characters included', () => {
    expect(invalidUtf8Offset(Buffer.from('Zoë, Łukasz, 日本, 😀'))).to.equal(-1);
  });

  it('names the offset of a byte that can never occur in UTF-8', () => {
    expect(invalidUtf8Offset(bytes(0x61, 0x62, 0xff, 0x63))).to.equal(2);
  });

  it('names the lead byte of a sequence that a wrong byte breaks', () => {
    expect(invalidUtf8Offset(bytes(0x61, 0xc3, 0x28))).to.equal(1);
    expect(
      invalidUtf8Offset(Buffer.concat([Buffer.from('é'.repeat(500)), bytes(0xe2, 0x82, 0x41)])),
    ).to.equal(1000);
  });

  it('names a stray continuation byte', () => {
    expect(invalidUtf8Offset(bytes(0x61, 0x80))).to.equal(1);
  });

  it('accepts an incomplete last character only when streaming', () => {
    expect(invalidUtf8Offset(bytes(0x61, 0xc3), true)).to.equal(-1);
    expect(invalidUtf8Offset(bytes(0x61, 0xc3), false)).to.equal(1);
  });

  it('skips leading continuation bytes that end a character of an earlier chunk', () => {
    expect(invalidUtf8Offset(bytes(0xab, 0x61, 0xff), false, true)).to.equal(2);
  });
});

describe('countLineFeeds()', () => {
  it('counts LF bytes before the end offset', () => {
    expect(countLineFeeds(Buffer.from('a\nb\nc\n'), 4)).to.equal(2);
  });
});

describe('parseImportRows() and UTF-8', () => {
  async function parse(chunks: Buffer[]): Promise<unknown[]> {
    const rows: unknown[] = [];
    for await (const row of parseImportRows(chunks, 'ndjson', new RowLines(), 1_000)) rows.push(row);
    return rows;
  }

  it('decodes a character split across chunks', async () => {
    const text = Buffer.from('{"name":"Zoë"}\n');
    const cut = text.indexOf(Buffer.from('ë')) + 1;
    expect(await parse([text.subarray(0, cut), text.subarray(cut)])).to.deep.equal([{ name: 'Zoë' }]);
  });

  it('refuses invalid UTF-8 with the line it is on, in a later chunk too', async () => {
    const err = await parse([
      Buffer.from('{"a":1}\n{"a":2}\n'),
      Buffer.from('{"a":3}\n{"a":"'),
      bytes(0xff) as Buffer,
    ]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ImportRowError);
    expect(err).to.include({ line: 4 });
    expect((err as Error).message).to.match(/not valid UTF-8/);
  });

  it('refuses a body that ends inside a character', async () => {
    const err = await parse([Buffer.from('{"a":1}\n{"a":"'), bytes(0xe2, 0x82) as Buffer]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ImportRowError);
    expect(err).to.include({ line: 2 });
  });
});
