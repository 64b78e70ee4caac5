import { expect } from 'chai';
import { judgeAudit } from '../../../.ci/check-advisories.js';

/** What npm 11 prints for `npm audit --json` when the registry refuses the bulk endpoint (seen here). */
const REFUSED = JSON.stringify({
  message: '405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk',
  method: 'POST',
  statusCode: 405,
  body: '',
  error: { summary: '', detail: '' },
});

function report(vulnerabilities: Record<string, { severity: string }>): string {
  const counts: Record<string, number> = { info: 0, low: 0, moderate: 0, high: 0, critical: 0 };
  for (const v of Object.values(vulnerabilities)) counts[v.severity]! += 1;
  return JSON.stringify({ auditReportVersion: 2, vulnerabilities, metadata: { vulnerabilities: counts } });
}

describe('.ci/check-advisories.ts judgeAudit()', () => {
  it('reports an advisory service that refused the request as unreachable, not as clean, without failing', () => {
    const verdict = judgeAudit(REFUSED);
    expect(verdict).to.include({ status: 'unreachable', exitCode: 0 });
    expect(verdict.message).to.match(/^advisory service unreachable \(405 Method Not Allowed/);
    expect(verdict.message).to.include('NOT checked');
  });

  it('reports output that is not JSON as unreachable', () => {
    expect(judgeAudit('npm error network ENOTFOUND')).to.include({ status: 'unreachable', exitCode: 0 });
  });

  it('fails on a runtime dependency with a high or critical advisory, naming it', () => {
    const verdict = judgeAudit(report({ pg: { severity: 'critical' }, zod: { severity: 'low' } }));
    expect(verdict).to.include({ status: 'vulnerable', exitCode: 1 });
    expect(verdict.message).to.include('pg (critical)').and.not.include('zod');
  });

  it('passes a report with advisories below high only, counting them', () => {
    const verdict = judgeAudit(report({ zod: { severity: 'moderate' } }));
    expect(verdict).to.include({ status: 'clean', exitCode: 0 });
    expect(verdict.message).to.include('(1 below it)');
  });
});
