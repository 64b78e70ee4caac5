import { createHmac, timingSafeEqual } from 'node:crypto';
import { fieldError, isUserId } from './user-input.js';

/** Keyset directions; anything else is refused (knex would silently turn it into `asc`). */
export const LIST_ORDERS = ['asc', 'desc'] as const;
/** One of `LIST_ORDERS`. */
export type ListOrder = (typeof LIST_ORDERS)[number];

/** What a cursor remembers: the last id seen, and the filter and order it belongs to. */
export interface CursorState {
  /** Last id of the page the cursor follows. */
  afterId: string;
  /** The status filter of the list (null = no filter). */
  status: string | null;
  order: ListOrder;
}

/** Longest cursor accepted, characters; real ones are well under 100. */
const MAX_CURSOR_LENGTH = 512;
const CURSOR_FORMAT = /^[A-Za-z0-9_-]{1,400}(?:\.[A-Za-z0-9_-]{43})?$/;

/**
 * Opaque keyset cursors: base64url of `{"v":1,"id":...,"s":...,"o":...}`, followed by
 * `.` and an HMAC-SHA256 of that text when a secret is configured. Without a secret a
 * client can forge a position (harmless: it only picks where a page starts); with one,
 * any edit is detected.
 */
export class UserCursorCodec {
  readonly #secret: string | undefined;

  /** @param secret HMAC-SHA256 key that signs cursors; none (or empty) means unsigned cursors. */
  constructor(secret?: string) {
    this.#secret = secret === '' ? undefined : secret;
  }

  /** The opaque cursor text for `state` (URL-safe, well under `MAX_CURSOR_LENGTH`). */
  encode(state: CursorState): string {
    const body = Buffer.from(
      JSON.stringify({ v: 1, id: state.afterId, s: state.status, o: state.order }),
    ).toString('base64url');
    return this.#secret ? `${body}.${this.#sign(body)}` : body;
  }

  /**
   * Decodes a cursor and checks it belongs to the list being asked for.
   * @throws ValidationError on `cursor` when it is malformed, altered, signed with another
   *   secret, or was issued for another status filter or order. Never reaches SQL.
   */
  decode(cursor: unknown, expected: { status: string | null; order: ListOrder }): CursorState {
    if (typeof cursor !== 'string' || cursor.length > MAX_CURSOR_LENGTH || !CURSOR_FORMAT.test(cursor)) {
      throw invalid();
    }
    const [body = '', signature] = cursor.split('.');
    if (this.#secret) {
      if (signature === undefined || !safeEqual(signature, this.#sign(body))) throw invalid();
    } else if (signature !== undefined) {
      throw invalid();
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      throw invalid();
    }
    if (!isCursorPayload(parsed)) throw invalid();
    if (parsed.s !== expected.status || parsed.o !== expected.order) {
      throw invalid('belongs to a list with another status filter or order');
    }
    return { afterId: parsed.id, status: parsed.s, order: parsed.o };
  }

  #sign(body: string): string {
    return createHmac('sha256', this.#secret ?? '')
      .update(body)
      .digest('base64url');
  }
}

interface CursorPayload {
  v: 1;
  id: string;
  s: string | null;
  o: ListOrder;
}

function isCursorPayload(value: unknown): value is CursorPayload {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const p = value as Record<string, unknown>;
  return (
    Object.keys(p).sort().join() === 'id,o,s,v' &&
    p.v === 1 &&
    isUserId(p.id) &&
    (p.s === null || typeof p.s === 'string') &&
    (LIST_ORDERS as readonly unknown[]).includes(p.o)
  );
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function invalid(why = 'is not a cursor returned by this list (malformed or altered)') {
  return fieldError('cursor', why, 'cursor');
}
