import { ImportRowError, ImportTooLargeError } from './request-errors.js';
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

/**
 * Counts the bytes of an unfinished row up to its last non-blank character: `before` bytes
 * already received of it, then `appended`. Returns the counted bytes, or `counted` unchanged
 * when `appended` is all blank.
 */
function pendingRowBytes(before: number, appended: string, counted: number): number {
  const kept = appended.trimEnd().length;
  return kept > 0
    ? before + Buffer.byteLength(kept === appended.length ? appended : appended.slice(0, kept))
    : counted;
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

interface ScannedRow {
  line: number;
  value: unknown;
}

function parseRow(text: string, line: number): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // JSON.parse's message quotes the input; keep row content out of the response.
    throw new ImportRowError(line, 'is not valid JSON');
  }
}

class NdjsonScanner {
  readonly #max: number;
  #partial = '';
  #line = 1;
  /** Bytes of the rows finished so far, and of the unfinished row: received, and counted. */
  #doneBytes = 0;
  #partialBytes = 0;
  #partialCounted = 0;

  constructor(maxRowBytes: number) {
    this.#max = maxRowBytes;
  }

  /** The 1-based line the next character fed is on. */
  get line(): number {
    return this.#line;
  }

  /** Bytes that became rows (see `ImportProgress`). */
  get rowBytes(): number {
    return this.#doneBytes + this.#partialCounted;
  }

  *feed(text: string, end = false): Generator<ScannedRow> {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      const piece = this.#partial + text.slice(start, nl);
      this.#partial = '';
      start = nl + 1;
      if (piece.length > this.#max) throw new ImportRowError(this.#line, 'is larger than the row limit');
      this.#partialBytes = this.#partialCounted = 0;
      if (piece.trim() !== '') {
        this.#doneBytes += Buffer.byteLength(piece);
        yield { line: this.#line, value: parseRow(piece, this.#line) };
      }
      this.#line += 1;
    }
    const appended = text.slice(start);
    this.#partialCounted = pendingRowBytes(this.#partialBytes, appended, this.#partialCounted);
    this.#partialBytes += Buffer.byteLength(appended);
    this.#partial += appended;
    if (this.#partial.length > this.#max)
      throw new ImportRowError(this.#line, 'is larger than the row limit');
    if (end && this.#partial.trim() !== '') {
      const piece = this.#partial;
      this.#partial = '';
      yield { line: this.#line, value: parseRow(piece, this.#line) };
    }
  }
}

/**
 * An incremental splitter of one top-level JSON array into element texts: it tracks
 * nesting depth and strings (with escapes) only; each element is then parsed by JSON.parse.
 */
class JsonArrayScanner {
  readonly #max: number;
  #state: 'before' | 'between' | 'element' | 'after' = 'before';
  #parts: string[] = [];
  #size = 0;
  #depth = 0;
  #inString = false;
  #escaped = false;
  #line = 1;
  #elementLine = 1;
  #elements = 0;
  /** Bytes of the elements finished so far, and of the unfinished one up to its last non-blank character. */
  #doneBytes = 0;
  #partBytes = 0;
  #partCounted = 0;

  constructor(maxRowBytes: number) {
    this.#max = maxRowBytes;
  }

  /** The 1-based line the next character fed is on. */
  get line(): number {
    return this.#line;
  }

  /** Bytes that became rows (see `ImportProgress`). */
  get rowBytes(): number {
    return this.#doneBytes + this.#partCounted;
  }

  *feed(text: string, end = false): Generator<ScannedRow> {
    let elementStart = this.#state === 'element' ? 0 : -1;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (this.#state === 'element') {
        if (this.#inString) {
          if (this.#escaped) this.#escaped = false;
          else if (c === 0x5c /* \ */) this.#escaped = true;
          else if (c === 0x22 /* " */) this.#inString = false;
          else if (c === 0x0a) this.#line += 1;
          continue;
        }
        if (c === 0x22) this.#inString = true;
        else if (c === 0x5b /* [ */ || c === 0x7b /* { */) this.#depth += 1;
        else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
          if (this.#depth === 0) {
            yield this.#finish(text.slice(elementStart, i));
            this.#state = 'after';
            continue;
          }
          this.#depth -= 1;
        } else if (c === 0x2c /* , */ && this.#depth === 0) {
          yield this.#finish(text.slice(elementStart, i));
          this.#state = 'between';
          continue;
        } else if (c === 0x0a) this.#line += 1;
        continue;
      }
      if (c === 0x0a) {
        this.#line += 1;
        continue;
      }
      if (c === 0x20 || c === 0x09 || c === 0x0d) continue;
      if (this.#state === 'before') {
        if (c !== 0x5b) throw new ImportRowError(this.#line, 'must be a JSON array of users');
        this.#state = 'between';
      } else if (this.#state === 'between') {
        if (c === 0x5d && this.#elements === 0) {
          this.#state = 'after';
          continue;
        }
        if (c === 0x2c || c === 0x5d) throw new ImportRowError(this.#line, 'is not valid JSON');
        this.#state = 'element';
        this.#elementLine = this.#line;
        elementStart = i;
        i -= 1; // scan this character as part of the element
      } else {
        throw new ImportRowError(this.#line, 'has content after the end of the array');
      }
    }
    if (this.#state === 'element') {
      const rest = text.slice(elementStart);
      this.#partCounted = pendingRowBytes(this.#partBytes, rest, this.#partCounted);
      this.#partBytes += Buffer.byteLength(rest);
      this.#parts.push(rest);
      this.#size += rest.length;
      if (this.#size > this.#max) throw new ImportRowError(this.#elementLine, 'is larger than the row limit');
    }
    if (end && this.#state !== 'after')
      throw new ImportRowError(this.#line, 'ends before the array is closed');
  }

  #finish(tail: string): ScannedRow {
    const text = this.#parts.length ? this.#parts.join('') + tail : tail;
    this.#parts = [];
    this.#size = 0;
    this.#partBytes = this.#partCounted = 0;
    this.#depth = 0;
    this.#elements += 1;
    this.#doneBytes += Buffer.byteLength(text);
    if (text.length > this.#max) throw new ImportRowError(this.#elementLine, 'is larger than the row limit');
    return { line: this.#elementLine, value: parseRow(text, this.#elementLine) };
  }
}
