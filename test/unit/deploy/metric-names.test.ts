/**
 * Every query of the Grafana dashboard (deploy/grafana) and of the alert rules
 * (deploy/prometheus) names only metrics the layer exports: the names are read from the PromQL
 * syntax tree (Prometheus's own grammar, @prometheus-io/lezer-promql) and looked up in a fresh
 * `Metrics` registry (histograms expose `_bucket`, `_sum` and `_count`). A renamed or removed
 * metric, or a typo in a panel, fails here instead of drawing an empty graph in production.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parser } from '@prometheus-io/lezer-promql';
import { expect } from 'chai';
import { parse } from 'yaml';
import { Metrics } from '../../../src/observability/metrics.js';

const read = (file: string): string =>
  readFileSync(fileURLToPath(new URL(`../../../${file}`, import.meta.url)), 'utf8');

/** The metric names a PromQL expression selects. @throws when it does not parse. */
function metricNames(expr: string): string[] {
  // Grafana's interval variables are not PromQL; any duration stands in for them.
  const promql = expr.replace(/\$__(rate_interval|interval|range)/g, '5m');
  const tree = parser.parse(promql);
  const names: string[] = [];
  const cursor = tree.cursor();
  do {
    if (cursor.type.isError) throw new Error(`not PromQL at ${cursor.from}: ${expr}`);
    if (cursor.name === 'Identifier' && cursor.node.parent?.name === 'VectorSelector')
      names.push(promql.slice(cursor.from, cursor.to));
    if (cursor.name === 'LabelName' && promql.slice(cursor.from, cursor.to) === '__name__')
      throw new Error(`select metrics by name, not by __name__: ${expr}`);
  } while (cursor.next());
  return names;
}

/** Every name the layer's registry exposes, histogram series included. */
async function exportedNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const m of await new Metrics().registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

interface Panel {
  title?: string;
  type: string;
  targets?: Array<{ expr?: string }>;
  panels?: Panel[];
}

function dashboardQueries(): Array<{ where: string; expr: string }> {
  const dash = JSON.parse(read('deploy/grafana/pg-data-layer.json')) as {
    panels: Panel[];
    templating: { list: Array<{ name: string; definition?: string }> };
  };
  const panels = dash.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  const queries = panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr ?? '' })),
  );
  for (const v of dash.templating.list) {
    // label_values(<selector>, <label>): its first argument is a series selector.
    const m = v.definition && /^label_values\((.+),\s*\w+\)$/.exec(v.definition);
    if (m) queries.push({ where: `variable $${v.name}`, expr: m[1]! });
  }
  return queries;
}

function ruleQueries(): Array<{ where: string; expr: string }> {
  const doc = parse(read('deploy/prometheus/alerts.yml')) as {
    groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
  };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })));
}

describe('metric names in deploy/ (dashboard and alert rules)', () => {
  it('reads the metric names of an expression, and only those', () => {
    expect(
      metricNames(
        'sum by (job) (rate(a_total{x="y"}[$__rate_interval])) / on(instance) histogram_quantile(0.9, b_bucket) > 16 * 1024',
      ),
    ).to.deep.equal(['a_total', 'b_bucket']);
    expect(() => metricNames('sum(rate(a_total[5m])')).to.throw(/not PromQL/);
  });

  for (const [what, queries] of [
    ['dashboard panel and variable', dashboardQueries],
    ['alert rule', ruleQueries],
  ] as const)
    it(`every ${what} names metrics the layer's registry exports`, async () => {
      const exported = await exportedNames();
      const found = queries();
      expect(found.length).to.be.above(10);
      const unknown: string[] = [];
      for (const { where, expr } of found) {
        const names = metricNames(expr);
        expect(names, `${where} selects no metric: ${expr}`).not.to.be.empty;
        for (const name of names) if (!exported.has(name)) unknown.push(`${where}: ${name}`);
      }
      expect(unknown).to.deep.equal([]);
    });

  it('the dashboard has panels for the pool, transactions, lost-COMMIT lookups, breaker, replicas, queries and HTTP', () => {
    const all = dashboardQueries().flatMap((q) => metricNames(q.expr));
    for (const name of [
      'db_pool_open_connections',
      'db_pool_in_use_connections',
      'db_pool_idle_connections',
      'db_pool_pending_acquires',
      'db_pool_acquire_wait_seconds_bucket',
      'db_transactions_total',
      'db_transaction_retries_total',
      'db_transaction_duration_seconds_bucket',
      'db_commit_lookups_total',
      'db_circuit_breaker_state',
      'db_replica_lag_bytes',
      'db_replica_up',
      'db_query_duration_seconds_bucket',
      'http_requests_total',
    ])
      expect(all, name).to.include(name);
  });
});
