/**
 * A commit token is a WAL position (PostgreSQL's pg_lsn text, e.g. `16/B374D848`): the end of
 * the WAL a commit was flushed to. A replica that has replayed up to it shows that commit.
 */
const LSN_TEXT = /^([0-9A-F]{1,8})\/([0-9A-F]{1,8})$/i;

/** True for a token as `lastCommitToken()` makes them. */
export function isCommitToken(value: unknown): value is string {
  return typeof value === 'string' && LSN_TEXT.test(value);
}

/** pg_lsn text -> a comparable number (64-bit); undefined for null or anything else. */
export function lsnValue(text: unknown): bigint | undefined {
  if (typeof text !== 'string') return undefined;
  const m = LSN_TEXT.exec(text);
  if (!m) return undefined;
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** A comparable position -> pg_lsn text. */
export function lsnText(value: bigint): string {
  return `${(value >> 32n).toString(16).toUpperCase()}/${(value & 0xffffffffn).toString(16).toUpperCase()}`;
}
