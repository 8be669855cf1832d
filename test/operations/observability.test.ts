import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { ROOT } from '../support/launch.ts';
import { startTestApp } from '../support/app.ts';
import { pair, sendTap, signUp } from '../support/clients.ts';
import { WsClient } from '../support/ws-client.ts';

const ALERTS = join(ROOT, 'ops/prometheus/alerts.yml');
const DASHBOARD = join(ROOT, 'ops/grafana/navi-dashboard.json');

/** promtool: required in CI (.ci/run installs it), skipped with a line saying how to get it elsewhere. */
function promtool(t: TestContext, args: string[], cwd = ROOT): { status: number | null; output: string } | undefined {
  try {
    execFileSync('promtool', ['--version'], { stdio: 'ignore' });
  } catch {
    if (process.env.CI === 'true') assert.fail('promtool is required in CI (apt-get install prometheus)');
    t.skip('promtool is not installed: apt-get install prometheus (it brings promtool)');
    return undefined;
  }
  const result = spawnSync('promtool', args, { cwd, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** Every metric a PromQL expression names (Prometheus' own `up` aside). */
function metricNames(expressions: string[]): Set<string> {
  const names = new Set<string>();
  for (const expr of expressions) for (const match of expr.matchAll(/\b((?:navi|nodejs|process)_[a-z0-9_]+)\b/g)) names.add(match[1]!);
  return names;
}

function ruleExpressions(): string[] {
  return [...readFileSync(ALERTS, 'utf8').matchAll(/expr: (\|\n(?:\s{10}.*\n)+|.*\n)/g)].map((m) => m[1]!);
}

function dashboardExpressions(): string[] {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Array<{ targets?: Array<{ expr: string }> }> };
  return dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr));
}

describe('the observability kit in ops/', () => {
  test('the alert rules pass promtool check rules and their unit tests', (t) => {
    const check = promtool(t, ['check', 'rules', ALERTS]);
    if (!check) return;
    assert.equal(check.status, 0, check.output);
    const unit = promtool(t, ['test', 'rules', 'alerts.test.yml'], join(ROOT, 'ops/prometheus'))!;
    assert.equal(unit.status, 0, unit.output);
  });

  test('every alert has its runbook in docs/operations.md, where its annotation points', () => {
    const rules = readFileSync(ALERTS, 'utf8');
    const runbook = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8');
    const alerts = [...rules.matchAll(/- alert: (\w+)/g)].map((m) => m[1]!);
    assert.ok(alerts.length >= 10);
    for (const alert of alerts) {
      assert.match(runbook, new RegExp(`^### ${alert}$`, 'm'), `docs/operations.md has no section for ${alert}`);
      assert.ok(rules.includes(`runbook: docs/operations.md#${alert.toLowerCase()}`), `${alert} points to its runbook`);
    }
  });

  test('the example Prometheus configuration passes promtool check config', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'navi-prometheus-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    copyFileSync(join(ROOT, 'ops/prometheus/prometheus.yml'), join(dir, 'prometheus.yml'));
    copyFileSync(ALERTS, join(dir, 'alerts.yml'));
    writeFileSync(join(dir, 'navi-metrics-token'), 'a-metrics-token-of-24-chars\n');
    const check = promtool(t, ['check', 'config', join(dir, 'prometheus.yml')]);
    if (check) assert.equal(check.status, 0, check.output);
  });

  test('every metric the rules and the dashboard name is exported by a running service after some traffic', async (t) => {
    const app = await startTestApp({ listen: true });
    t.after(() => app.close());
    const alex = await signUp(app);
    const sam = await signUp(app);
    await pair(alex, sam);
    const socket = await WsClient.connect(app.wsUrl, sam.accessToken);
    const tap = await sendTap(alex, sam);
    await socket.next('tap');
    socket.send({ type: 'ack', tapId: tap.id, status: 'delivered' });
    await fetch(`${app.url}/v1/nothing-here`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const text = await (await fetch(`${app.url}/metrics`)).text();
    socket.socket.close();

    const declared = new Set([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => m[1]!));
    const histograms = new Set([...text.matchAll(/^# TYPE (\S+) histogram$/gm)].map((m) => m[1]!));
    const named = metricNames([...ruleExpressions(), ...dashboardExpressions()]);
    assert.ok(named.size >= 25, `the kit names the metrics it watches (${named.size})`);
    const missing = [...named].filter((name) => {
      const base = name.replace(/_(bucket|sum|count)$/, '');
      return !declared.has(name) && !(histograms.has(base) && base !== name);
    });
    assert.deepEqual(missing, [], 'metrics named in ops/ but not exported by the service');

    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}"=]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    assert.equal(value('navi_health_check_up{check="database"}'), 1);
    assert.ok(value('navi_db_size_bytes') > 0, 'the database size is measured');
    assert.ok(value('navi_ws_connection_attempts_total') >= 1 && value('navi_ws_connections_opened_total') >= 1);
    assert.ok(value('navi_db_query_duration_seconds_count{kind="select"}') > 0, 'queries are timed');
    assert.ok(value('navi_db_query_duration_seconds_count{kind="procedure"}') > 0, 'the hot-path transactions are timed');
    assert.match(text, /^nodejs_eventloop_lag_p99_seconds \d/m);
  });
});
