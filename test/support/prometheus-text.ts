/** One sample of the Prometheus text exposition format. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
const META = /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]*( .*)?$/;

/**
 * A strict parser of the Prometheus text format (version 0.0.4), enough to prove that
 * `/metrics` is well-formed: every line is a comment, HELP/TYPE, blank, or a sample with a
 * numeric value. Throws naming the first bad line.
 */
export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '' || META.test(line)) continue;
    if (line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`line ${i + 1} is not Prometheus text: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!;
    const raw = m[3]!;
    samples.push({ name: m[1]!, labels, value: parseValue(raw, i + 1, line) });
  }
  return samples;
}

/**
 * A sample value as Prometheus reads it (Go's strconv.ParseFloat): decimal or exponent
 * notation, or NaN / Inf in any letter case (prom-client writes an empty event-loop
 * histogram's mean as "Nan").
 */
function parseValue(raw: string, lineNo: number, line: string): number {
  const special = /^([+-]?)(nan|inf|infinity)$/i.exec(raw);
  if (special) {
    if (special[2]!.toLowerCase() === 'nan') return NaN;
    return special[1] === '-' ? -Infinity : Infinity;
  }
  const value = Number(raw);
  if (Number.isNaN(value)) throw new Error(`line ${lineNo} has a non-numeric value: ${line}`);
  return value;
}

/** The value of one sample (labels must match exactly those given); 0 when absent. */
export function sampleValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}
