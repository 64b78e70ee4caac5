import { ImportRowError, ImportTooLargeError } from './request-errors.js';
import { JsonArrayScanner, NdjsonScanner } from './row-scanners.js';
import { countLineFeeds, invalidUtf8Offset, strictUtf8Decoder } from './utf8.js';

/** Where each streamed row started, kept compactly (one entry per change of `line - row`). */
export class RowLines {
  // Parallel arrays of breakpoints: from row `rows[i]` on, line = row + offsets[i].
  readonly #rows: number[] = [];
  readonly #offsets: number[] = [];
  #count = 0;

  /** Records that the next row starts on `line` (1-based). */
  push(line: number): void {
    const offset = line - this.#count;
    if (this.#offsets.at(-1) !== offset) {
      this.#rows.push(this.#count);
      this.#offsets.push(offset);
    }
    this.#count += 1;
  }

  /** Rows recorded so far. */
  get count(): number {
    return this.#count;
  }

  /** The 1-based line where the 0-based row `index` started, or undefined if never seen. */
  lineOf(index: number): number | undefined {
    if (!Number.isInteger(index) || index < 0 || index >= this.#count) return undefined;
    let lo = 0;
    let hi = this.#rows.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#rows[mid]! <= index) lo = mid;
      else hi = mid - 1;
    }
    return index + this.#offsets[lo]!;
  }
}

/** Formats accepted by {@link parseImportRows}. */
export type ImportFormat = 'ndjson' | 'json-array';

/**
 * How much of an import's body has become rows, for the upload's minimum rate: the bytes of
 * every row parsed so far, plus those of the row being received up to its last non-blank
 * character. Blank lines, whitespace between array elements and trailing whitespace of an
 * unfinished row do not count, so a client trickling newlines buys no time with them.
 */
export class ImportProgress {
  rowBytes = 0;
}

/** Optional bounds and counters of {@link parseImportRows}. */
export interface ParseImportOptions {
  /** Most rows the body may carry; one more throws `ImportTooLargeError('maxRows')`. 0 or absent: no cap. */
  maxRows?: number;
  /** Updated after every chunk with the bytes that became rows (see `ImportProgress`). */
  progress?: ImportProgress;
}

/**
 * Parses a streamed request body into rows, one at a time, without holding the body:
 * NDJSON (one JSON value per line; blank lines skipped) or one JSON array. Each row's
 * 1-based starting line is recorded in `lines` before the row is yielded.
 *
 * @param maxRowBytes - a single row longer than this (characters) is refused, so one
 *   endless line cannot exhaust memory.
 * @throws ImportRowError naming the line of malformed JSON, of invalid UTF-8 (decoded with
 *   a fatal decoder, never replaced by U+FFFD), of an oversized row, or of anything after a
 *   JSON array's closing bracket.
 * @throws ImportTooLargeError at the row past `options.maxRows`.
 */
export async function* parseImportRows(
  body: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  format: ImportFormat,
  lines: RowLines,
  maxRowBytes: number,
  { maxRows = 0, progress }: ParseImportOptions = {},
): AsyncGenerator<unknown> {
  const scanner = format === 'ndjson' ? new NdjsonScanner(maxRowBytes) : new JsonArrayScanner(maxRowBytes);
  // Fatal: invalid UTF-8 is refused with its line, never stored as U+FFFD (StringDecoder's way).
  const decoder = strictUtf8Decoder();
  let chunks = 0;
  for await (const chunk of body) {
    const text = typeof chunk === 'string' ? chunk : decodeChunk(decoder, chunk, scanner.line, chunks > 0);
    chunks += 1;
    for (const row of scanner.feed(text)) {
      if (maxRows > 0 && lines.count >= maxRows) throw new ImportTooLargeError('maxRows', maxRows);
      lines.push(row.line);
      yield row.value;
    }
    if (progress) progress.rowBytes = scanner.rowBytes;
  }
  let rest: string;
  try {
    rest = decoder.decode();
  } catch {
    throw new ImportRowError(scanner.line, 'is not valid UTF-8 (the body ends inside a character)');
  }
  for (const row of scanner.feed(rest, true)) {
    if (maxRows > 0 && lines.count >= maxRows) throw new ImportTooLargeError('maxRows', maxRows);
    lines.push(row.line);
    yield row.value;
  }
}
/** One chunk through the streaming fatal decoder; on failure, an ImportRowError naming the bad byte's line. */
function decodeChunk(
  decoder: ReturnType<typeof strictUtf8Decoder>,
  chunk: Buffer,
  lineAtStart: number,
  continued: boolean,
): string {
  try {
    return decoder.decode(chunk, { stream: true });
  } catch {
    const offset = invalidUtf8Offset(chunk, true, continued);
    const line = lineAtStart + countLineFeeds(chunk, offset < 0 ? chunk.length : offset);
    throw new ImportRowError(line, 'is not valid UTF-8');
  }
}
