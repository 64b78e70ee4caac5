/**
 * The known key closest to a mistyped one, for "did you mean ...?": the same key in another
 * spelling (`max_open_conns`, `MaxOpenConns`), else the one at the smallest edit distance if
 * that distance is small for the key's length. Undefined when nothing is close.
 */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  const normal = normalize(key);
  const same = known.find((candidate) => normalize(candidate) === normal);
  if (same) return same;
  const limit = normal.length <= 4 ? 1 : normal.length <= 8 ? 2 : 3;
  let best: { key: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(normal, normalize(candidate));
    if (distance <= limit && (!best || distance < best.distance)) best = { key: candidate, distance };
  }
  return best?.key;
}

function normalize(key: string): string {
  return key.toLowerCase().replace(/[_-]/g, '');
}

/** Levenshtein distance (insertions, deletions, substitutions). */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
