import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { ROUTE_LABELS } from '../../../bench/http/print-results.js';

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));

describe('npm run bench:http -- --quick', () => {
  it('starts the service and the bare baseline, drives every route, prints a row for each and stops', async function () {
    // Two servers, an embedded PostgreSQL and a load generator on a shared 2-core machine.
    this.timeout(240_000);
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>(
      (resolve) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', 'bench/http/run-http-bench.ts', '--quick'],
          { cwd: REPO_ROOT, timeout: 200_000, maxBuffer: 10 * 1024 * 1024 },
          (err, out, errOut) =>
            resolve({ code: err ? Number(err.code ?? 1) : 0, stdout: out, stderr: errOut }),
        );
      },
    );
    expect(code, `${stdout}\n${stderr}`).to.equal(0);
    expect(stdout).to.match(/^### HTTP service vs bare Fastify \+ pg \((wrk|autocannon),/m);
    for (const label of Object.values(ROUTE_LABELS)) {
      // | route | bare req/s | service req/s | ratio | ... : numbers, never asserted against a target.
      const row = stdout.split('\n').find((line) => line.startsWith(`| ${label} |`));
      expect(row, `row of ${label} in:\n${stdout}`).to.match(/^\| [^|]+ \| \d+ \| \d+ \| [\d.]+x \|/);
    }
  });
});
