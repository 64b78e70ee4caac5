const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** One Go-style component: a decimal number and a unit ("1.5s", "30m", "200ms"). */
const COMPONENT = /(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h)/y;

/**
 * Parses a duration into whole milliseconds: a number of milliseconds (`500`), a string of
 * digits (`"500"`, as environment variables are), or a Go-style string of one or more
 * `<number><unit>` parts with units `ms`, `s`, `m`, `h` (`"500ms"`, `"1.5s"`, `"1m30s"`).
 *
 * Returns an error sentence instead of throwing, so every bad key can be reported at once.
 * Negative values, unknown units (`"10 sec"`, `"1d"`, Go's `"us"`/`"ns"`) and results that are
 * not a whole number of milliseconds (`"1.5ms"`) are errors.
 */
export function parseDuration(value: unknown): { ms: number } | { error: string } {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return { error: 'must be a finite number of milliseconds' };
    if (value < 0) return { error: 'must not be negative' };
    if (!Number.isInteger(value)) return { error: 'must be a whole number of milliseconds' };
    return { ms: value };
  }
  if (typeof value !== 'string') {
    return { error: 'expected a duration such as "500ms", "30s", "5m" or a number of milliseconds' };
  }
  const text = value.trim();
  if (/^\d+$/.test(text)) return { ms: Number(text) };
  if (text.length === 0) return { error: 'expected a duration, got an empty string' };
  if (text.startsWith('-')) return { error: 'must not be negative' };
  let total = 0;
  COMPONENT.lastIndex = 0;
  while (COMPONENT.lastIndex < text.length) {
    const match = COMPONENT.exec(text);
    if (!match) {
      return { error: 'expected a duration such as "500ms", "30s", "1m30s" or a number of milliseconds' };
    }
    total += Number(match[1]) * (UNIT_MS[match[2] ?? ''] ?? Number.NaN);
  }
  // Float arithmetic ("0.1s" = 100.00000000000001) is rounded away before the whole-ms check.
  const rounded = Math.round(total * 1_000) / 1_000;
  if (!Number.isInteger(rounded)) return { error: 'must be a whole number of milliseconds' };
  if (!Number.isSafeInteger(rounded)) return { error: 'is too large' };
  return { ms: rounded };
}
