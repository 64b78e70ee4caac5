/**
 * Dependency advisory check for CI: runs `npm audit --omit=dev --json` (the runtime tree, what
 * the production image installs) and judges its output. Fails (exit 1) only when an advisory
 * at or above `high` affects a runtime dependency. When the advisory service cannot be asked,
 * as on this repository's machine, whose registry answers the bulk advisory endpoint with
 * 405 Method Not Allowed, it says so on one line, "advisory service unreachable", and exits 0:
 * an unchecked tree is reported, never passed off as a clean one (docs/deployment.md).
 *
 *   npm run audit:deps
 */
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';

/** npm's advisory severities, lowest first. */
const SEVERITIES = ['info', 'low', 'moderate', 'high', 'critical'] as const;
type Severity = (typeof SEVERITIES)[number];

/** What the check concluded, the line to print, and the exit code. */
export interface AdvisoryVerdict {
  status: 'clean' | 'vulnerable' | 'unreachable';
  message: string;
  exitCode: 0 | 1;
}

interface AuditReport {
  vulnerabilities?: Record<string, { severity?: Severity }>;
  metadata?: { vulnerabilities?: Partial<Record<Severity, number>> };
  message?: string;
  error?: { summary?: string; code?: string };
}

/**
 * Judges the JSON `npm audit --json` printed. A report (it has `metadata.vulnerabilities`) is
 * clean or vulnerable by the packages at or above `failAt`; anything else (an error object, no
 * JSON at all) means the advisories were not checked.
 */
export function judgeAudit(stdout: string, failAt: Severity = 'high'): AdvisoryVerdict {
  let report: AuditReport;
  try {
    report = JSON.parse(stdout) as AuditReport;
  } catch {
    return unreachable('npm audit printed no JSON');
  }
  const counts = report.metadata?.vulnerabilities;
  if (!counts)
    return unreachable(report.message ?? report.error?.summary ?? report.error?.code ?? 'no report');
  const floor = SEVERITIES.indexOf(failAt);
  const serious = Object.entries(report.vulnerabilities ?? {})
    .filter(([, v]) => v.severity !== undefined && SEVERITIES.indexOf(v.severity) >= floor)
    .map(([name, v]) => `${name} (${v.severity})`)
    .sort();
  const total = SEVERITIES.reduce((n, s) => n + (counts[s] ?? 0), 0);
  if (serious.length > 0) {
    return {
      status: 'vulnerable',
      message: `advisories at or above ${failAt} in runtime dependencies: ${serious.join(', ')}`,
      exitCode: 1,
    };
  }
  return {
    status: 'clean',
    message: `no advisory at or above ${failAt} in runtime dependencies (${total} below it)`,
    exitCode: 0,
  };
}

function unreachable(why: string): AdvisoryVerdict {
  return {
    status: 'unreachable',
    message: `advisory service unreachable (${why}): runtime dependencies NOT checked for advisories`,
    exitCode: 0,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const audit = spawnSync('npm', ['audit', '--omit=dev', '--json'], { encoding: 'utf8' });
  const verdict = judgeAudit(audit.stdout ?? '');
  console.log(`advisories: ${verdict.message}`);
  process.exitCode = verdict.exitCode;
}
