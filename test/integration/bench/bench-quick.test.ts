import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import {
  PATH_LABELS,
  PATH_STACKS,
  PATHS,
  STACK_LABELS,
  STACKS,
  type StacksRun,
} from '../../../bench/stacks-report.js';
import { testServer } from '../../support/root-hooks.js';

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const RESULTS = path.join(REPO_ROOT, 'bench', 'results');

/** mtime of each bench/results/latest.* that exists, so the test can tell none was written. */
function resultStamps(): Record<string, number> {
  const stamps: Record<string, number> = {};
  for (const f of ['latest.json', 'latest.md', 'latest.svg']) {
    const p = path.join(RESULTS, f);
    if (existsSync(p)) stamps[f] = statSync(p).mtimeMs;
  }
  return stamps;
}

describe('npm run bench -- --quick', () => {
  let out: string;
  before(() => {
    out = mkdtempSync(path.join(os.tmpdir(), 'pgdl-bench-quick-test-'));
  });
  after(() => rmSync(out, { recursive: true, force: true }));

  it('runs every path of every stack once, prints a row for each and writes its files where told', async function () {
    // Eight stacks' pools and ~40 tiny scenarios on a shared 2-core machine: about 10 s.
    this.timeout(90_000);
    const before = resultStamps();
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>(
      (resolve) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', 'bench/run.ts', '--quick', '--out', out],
          {
            cwd: REPO_ROOT,
            timeout: 80_000,
            maxBuffer: 10 * 1024 * 1024,
            // The run's server (no second embedded PostgreSQL), in a database of this test's own.
            env: {
              ...process.env,
              BENCH_DATABASE_URL: testServer().adminUrl,
              BENCH_DATABASE_NAME: `pgdl_bench_quick_${process.pid}`,
            },
          },
          (err, o, e) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout: o, stderr: e }),
        );
      },
    );
    expect(code, `${stdout}\n${stderr}`).to.equal(0);
    const lines = stdout.split('\n');

    // The summary: one row per path, a cell per stack (a ratio, or n/a where the stack has no way).
    const others = STACKS.filter((s) => s !== 'pg');
    const header = `| path | raw pg (unnamed) | ${others.map((s) => STACK_LABELS[s]).join(' | ')} |`;
    expect(lines, stdout).to.include(header);
    for (const p of PATHS) {
      const row = lines.find((l) => l.startsWith(`| ${PATH_LABELS[p]}, `));
      expect(row, `summary row of ${p} in:\n${stdout}`).to.be.a('string');
      const cells = row!
        .split('|')
        .slice(2, -1)
        .map((c) => c.trim());
      expect(cells[0], row).to.match(/^\d+ (ops|rows)\/s$/);
      others.forEach((s, i) =>
        expect(cells[i + 1], `${p} x ${s}: ${row}`).to.match(
          PATH_STACKS[p].includes(s) ? /^\d+\.\d\dx$/ : /^n\/a$/,
        ),
      );
    }

    // The per-path tables: a row per stack that has a way on the path.
    for (const p of PATHS) {
      const start = lines.findIndex((l) => l.startsWith(`### ${PATH_LABELS[p]}, `));
      expect(start, `table of ${p}`).to.be.greaterThan(-1);
      const next = lines.findIndex(
        (l, i) => i > start && (l.startsWith('### ') || l.startsWith('Statements ')),
      );
      const table = lines.slice(start + 1, next);
      for (const s of PATH_STACKS[p])
        expect(
          table.some((l) => l.startsWith(`| ${STACK_LABELS[s]} | `)),
          `row of ${s} in the table of ${p}`,
        ).to.be.true;
    }

    // Its files went to --out; bench/results/latest.* were left alone.
    const run = JSON.parse(readFileSync(path.join(out, 'latest.json'), 'utf8')) as StacksRun;
    expect(run.quick).to.be.true;
    expect(run.paths.map((p) => p.path)).to.deep.equal([...PATHS]);
    for (const p of run.paths)
      expect(
        p.cells.map((c) => c.stack),
        p.path,
      ).to.have.members([...PATH_STACKS[p.path]]);
    const md = readFileSync(path.join(out, 'latest.md'), 'utf8');
    for (const p of PATHS) expect(md).to.include(`### ${PATH_LABELS[p]}, `);
    const svg = readFileSync(path.join(out, 'latest.svg'), 'utf8');
    expect(svg).to.match(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svg.match(/<rect x=/g) ?? []).to.have.length(PATHS.reduce((n, p) => n + PATH_STACKS[p].length, 0));
    expect(resultStamps()).to.deep.equal(before);
  });
});
