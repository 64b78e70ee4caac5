import { ImportRowError } from './request-errors.js';

/** One row a scanner found: its 1-based starting line and its parsed value. */
export interface ScannedRow {
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

/**
 * Splits NDJSON into rows, one JSON value per line (blank lines skipped), across chunk
 * boundaries; counts the bytes that become rows (see `ImportProgress`).
 */
export class NdjsonScanner {
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
export class JsonArrayScanner {
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
