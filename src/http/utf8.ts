/*
 * Strict UTF-8 for request bodies. Node's default decoding (and Fastify's, and StringDecoder)
 * turns an invalid byte sequence into U+FFFD silently, so a corrupted upload would be stored
 * as replacement characters; a fatal `TextDecoder` refuses it instead. TextDecoder does not
 * say *where* the bad byte is, so `invalidUtf8Offset` finds it (only on the failure path).
 */
import { TextDecoder } from 'node:util';

/** A fatal UTF-8 decoder: `decode()` throws a TypeError on the first invalid byte sequence. */
export function strictUtf8Decoder(): TextDecoder {
  return new TextDecoder('utf-8', { fatal: true });
}

/**
 * The 0-based offset in `bytes` of the first byte that cannot start or continue valid UTF-8,
 * or -1 when every byte is valid (an incomplete sequence at the very end counts as valid
 * when `streaming`, as a streaming decoder would wait for the rest).
 *
 * `skipLeading` continuation bytes at the start are taken as the end of a character begun in
 * an earlier chunk. Binary search over prefixes with fresh fatal decoders (a prefix that
 * decodes implies every shorter one does): O(n log n), run only after a decode failed.
 */
export function invalidUtf8Offset(bytes: Uint8Array, streaming = false, skipLeading = false): number {
  let start = 0;
  if (skipLeading) while (start < 3 && start < bytes.length && isContinuation(bytes[start]!)) start += 1;
  const decodes = (end: number, stream: boolean): boolean => {
    try {
      strictUtf8Decoder().decode(bytes.subarray(start, end), { stream });
      return true;
    } catch {
      return false;
    }
  };
  if (decodes(bytes.length, streaming)) return -1;
  // Largest prefix that still decodes as a stream (an incomplete last character is fine).
  let lo = start;
  let hi = bytes.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (decodes(mid, true)) lo = mid;
    else hi = mid - 1;
  }
  if (decodes(lo, false)) return lo; // the byte at `lo` cannot follow a complete character
  // The prefix ends inside a character that the next byte (or the end) breaks: report its lead byte.
  let lead = lo - 1;
  while (lead > start && isContinuation(bytes[lead]!)) lead -= 1;
  return lead;
}

function isContinuation(byte: number): boolean {
  return (byte & 0xc0) === 0x80;
}

/** Number of LF bytes in `bytes` before `end` (LF never occurs inside a multi-byte UTF-8 character). */
export function countLineFeeds(bytes: Uint8Array, end: number): number {
  let n = 0;
  for (let i = bytes.indexOf(0x0a); i !== -1 && i < end; i = bytes.indexOf(0x0a, i + 1)) n += 1;
  return n;
}
