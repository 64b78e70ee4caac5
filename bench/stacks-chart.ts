/**
 * An SVG bar chart of a stacks run: one group of horizontal bars per path, one bar per stack,
 * its length the ratio against raw pg (unnamed) with a line at 1.0x. Hand-written (about a
 * hundred lines of SVG text) rather than a charting library, which would bring a DOM or a
 * canvas into the dev tree for one static picture.
 *
 * `npx tsx bench/stacks-chart.ts bench/results/latest.json docs/img/benchmarks-node20.svg`
 * redraws a chart from a results file (`npm run bench` writes `latest.svg` beside it itself).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { STACK_LABELS, STACKS, pathTitle, type StackKey, type StacksRun } from './stacks-report.js';

const COLOURS: Record<StackKey, string> = {
  pg: '#9e9e9e',
  product: '#d62728',
  knex: '#1f77b4',
  objection: '#ff7f0e',
  kysely: '#2ca02c',
  pgPromise: '#9467bd',
  postgresJs: '#8c564b',
  pgNamed: '#17becf',
};

const BAR = 13;
const GAP = 3;
const GROUP_GAP = 26;
const LEFT = 150;
const PLOT = 560;
const RIGHT = 60;
const TOP = 64;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The chart as an SVG document (self-contained: no fonts, scripts or external references). */
export function renderChart(run: StacksRun): string {
  const ratios = run.paths.flatMap((p) => p.cells.map((c) => c.ratio));
  const max = Math.max(2, Math.ceil(Math.max(...ratios) * 2) / 2);
  const x = (ratio: number): number => LEFT + (Math.min(ratio, max) / max) * PLOT;
  const body: string[] = [];
  let y = TOP;
  for (const p of run.paths) {
    body.push(`<text x="8" y="${y + 10}" font-weight="bold">${esc(pathTitle(p))}</text>`);
    y += 16;
    for (const stack of STACKS) {
      const cell = p.cells.find((c) => c.stack === stack);
      if (!cell) continue;
      const w = Math.max(1, x(cell.ratio) - LEFT);
      body.push(
        `<text x="${LEFT - 6}" y="${y + BAR - 3}" text-anchor="end">${esc(STACK_LABELS[stack])}</text>`,
        `<rect x="${LEFT}" y="${y}" width="${w.toFixed(1)}" height="${BAR}" fill="${COLOURS[stack]}"><title>${esc(`${STACK_LABELS[stack]}: ${cell.how}, ${cell.perSec.toFixed(0)} ${p.unit}, ${cell.ratio.toFixed(2)}x (${cell.ratioMin.toFixed(2)}-${cell.ratioMax.toFixed(2)})`)}</title></rect>`,
        `<text x="${(LEFT + w + 4).toFixed(1)}" y="${y + BAR - 3}">${cell.ratio.toFixed(2)}x</text>`,
      );
      y += BAR + GAP;
    }
    y += GROUP_GAP - GAP;
  }
  const height = y + 10;
  const grid: string[] = [];
  const step = max > 3 ? 1 : 0.5;
  for (let t = 0; t <= max + 1e-9; t += step) {
    const gx = x(t).toFixed(1);
    grid.push(
      `<line x1="${gx}" y1="${TOP - 8}" x2="${gx}" y2="${height - 20}" stroke="${t === 1 ? '#000' : '#ddd'}" stroke-width="${t === 1 ? 1.5 : 1}"${t === 1 ? ' stroke-dasharray="4 3"' : ''}/>`,
      `<text x="${gx}" y="${TOP - 12}" text-anchor="middle" fill="#555">${t.toFixed(1)}x</text>`,
    );
  }
  const width = LEFT + PLOT + RIGHT;
  const title = `Throughput vs raw pg (unnamed statements), higher is faster${run.quick ? ' (QUICK MODE: meaningless)' : ''}`;
  const sub = `node ${run.node}, ${run.date.slice(0, 10)}, median of ${run.rounds} rotated round(s), pool ${run.pool}, ${run.postgres}, ${run.host.cpus} CPUs`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="8" y="18" font-size="13" font-weight="bold">${esc(title)}</text>`,
    `<text x="8" y="34" fill="#555">${esc(sub)}</text>`,
    ...grid,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [input, output] = process.argv.slice(2);
  if (!input || !output) throw new Error('usage: npx tsx bench/stacks-chart.ts RESULTS.json OUT.svg');
  writeFileSync(output, renderChart(JSON.parse(readFileSync(input, 'utf8')) as StacksRun));
  console.log(`wrote ${output}`);
}
