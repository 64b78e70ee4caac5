/**
 * deploy/prometheus/alerts.yml through Prometheus's own checker: `promtool check rules` (syntax,
 * PromQL, templates) and `promtool test rules` (alerts.test.yml: for every alert, synthetic
 * series that must fire after its `for:` window and series that must not). promtool comes with
 * Debian's `prometheus` package, which `.ci/run` installs when absent; without it this fails.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { parse } from 'yaml';

const DIR = fileURLToPath(new URL('../../../deploy/prometheus', import.meta.url));
const run = promisify(execFile);

/** Runs promtool in deploy/prometheus; resolves with its output, rejects naming what failed. */
async function promtool(...args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run('promtool', args, { cwd: DIR, timeout: 60_000 });
    return stdout + stderr;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (e.code === 'ENOENT')
      throw new Error(
        'promtool is not installed: apt-get install -y prometheus (.ci/run does it when absent)',
        { cause: err },
      );
    throw new Error(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`, {
      cause: err,
    });
  }
}

interface Rule {
  alert: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleTest {
  alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }>;
}

const rules = (): Rule[] =>
  (
    parse(readFileSync(path.join(DIR, 'alerts.yml'), 'utf8')) as { groups: Array<{ rules: Rule[] }> }
  ).groups.flatMap((g) => g.rules);

describe('deploy/prometheus alert rules', function () {
  this.timeout(60_000);

  it('pass promtool check rules', async () => {
    const out = await promtool('check', 'rules', 'alerts.yml');
    expect(out).to.match(new RegExp(`SUCCESS: ${rules().length} rules found`));
  });

  it('pass their promtool unit tests (alerts.test.yml)', async () => {
    expect(await promtool('test', 'rules', 'alerts.test.yml')).to.match(/SUCCESS/);
  });

  it('each have for:, a severity, a summary, a description and a runbook section in docs/observability.md', () => {
    const doc = readFileSync(
      fileURLToPath(new URL('../../../docs/observability.md', import.meta.url)),
      'utf8',
    );
    for (const rule of rules()) {
      expect(rule.for, rule.alert).to.match(/^\d+[smh]$/);
      expect(rule.labels?.severity, rule.alert).to.be.oneOf(['warning', 'critical']);
      expect(rule.annotations?.summary, rule.alert).to.be.a('string').and.not.be.empty;
      expect(rule.annotations?.description, rule.alert).to.be.a('string').and.not.be.empty;
      expect(rule.annotations?.runbook_url, rule.alert).to.equal(
        `docs/observability.md#${rule.alert.toLowerCase()}`,
      );
      expect(doc, `docs/observability.md has no "#### ${rule.alert}" section`).to.include(
        `\n#### ${rule.alert}\n`,
      );
    }
  });

  it('are each tested firing and not firing', () => {
    const tests = (parse(readFileSync(path.join(DIR, 'alerts.test.yml'), 'utf8')) as { tests: RuleTest[] })
      .tests;
    const cases = tests.flatMap((t) => t.alert_rule_test);
    for (const { alert } of rules()) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${alert} never tested firing`,
      ).to.equal(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${alert} never tested not firing`,
      ).to.equal(true);
    }
  });
});
