import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { Health } from '../../src/health.ts';
import { startTestApp } from '../support/app.ts';
import { createTestDatabase } from '../support/database.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';
import { problemOf } from '../support/clients.ts';

const get = (t: Awaited<ReturnType<typeof startTestApp>>, url: string) => t.app.inject({ method: 'GET', url });

function busyWait(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe('liveness, readiness and health', () => {
  test('a healthy instance: live, ready, and /health in the seed shape with a latency per check', async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const live = await get(app, '/livez');
    assert.equal(live.statusCode, 200);
    assert.equal(live.json().status, 'ok');
    assert.equal(typeof live.json().uptime, 'number');

    const ready = await get(app, '/readyz');
    assert.equal(ready.statusCode, 200);
    assert.deepEqual(Object.keys(ready.json().checks).sort(), ['database', 'load'], 'readiness: only what traffic needs');

    const health = (await get(app, '/health')).json();
    assert.equal(health.status, 'ok');
    assert.ok(!Number.isNaN(Date.parse(health.timestamp)));
    assert.ok(health.uptime >= 0);
    for (const name of ['database', 'websocket']) {
      assert.equal(health.checks[name].status, 'ok');
      assert.equal(typeof health.checks[name].latencyMs, 'number');
    }
  });

  test('while draining /readyz answers 503 (load balancers move away) and /livez stays 200 (no restart)', async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    app.ctx.health.startDraining();
    const ready = await get(app, '/readyz');
    assert.equal(ready.statusCode, 503);
    assert.equal(ready.json().status, 'draining');
    assert.equal((await get(app, '/health')).statusCode, 503);
    assert.equal((await get(app, '/livez')).statusCode, 200);
  });

  test('a database that does not answer makes /readyz and /health 503 without revealing addresses; /livez stays 200', async (t) => {
    const database = await createTestDatabase();
    // PostgreSQL: a real outage, through a proxy the test cuts. SQLite: its thread stops.
    const proxy =
      database.config.kind === 'postgres'
        ? await TcpProxy.start({ host: new URL(database.config.url).hostname, port: Number(new URL(database.config.url).port || 5432) })
        : undefined;
    if (proxy && database.config.kind === 'postgres') {
      const url = new URL(database.config.url);
      url.port = String(proxy.port);
      database.config = { kind: 'postgres', url: url.toString() };
    }
    const app = await startTestApp({ database });
    t.after(async () => {
      proxy?.restore();
      await app.close();
      await proxy?.close();
    });
    if (proxy) proxy.cut();
    else await app.ctx.database.close();
    const ready = await get(app, '/readyz');
    assert.equal(ready.statusCode, 503);
    assert.equal(ready.json().status, 'failing');
    assert.equal(ready.json().checks.database.status, 'failing');
    assert.match(ready.json().checks.database.detail, /^the database does not answer/);
    assert.doesNotMatch(ready.body, /127\.0\.0\.1|\/tmp\//);
    assert.equal((await get(app, '/health')).statusCode, 503);
    assert.equal((await get(app, '/livez')).statusCode, 200);
    if (proxy) {
      proxy.restore();
      assert.equal((await get(app, '/readyz')).statusCode, 200, 'ready again once the database is back');
    }
  });

  test('a subsystem adds its check in one line: a failing readiness check (say Redis) makes the instance unready', async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    let redisUp = true;
    app.ctx.health.add('redis', () => (redisUp ? { status: 'ok' } : { status: 'failing', detail: 'redis does not answer' }), {
      readiness: true,
    });
    assert.equal((await get(app, '/readyz')).statusCode, 200);
    redisUp = false;
    const ready = await get(app, '/readyz');
    assert.equal(ready.statusCode, 503);
    assert.equal(ready.json().checks.redis.detail, 'redis does not answer');
    assert.throws(() => app.ctx.health.add('redis', () => ({ status: 'ok' }), { readiness: true }), /already registered/);
  });

  test('a check that hangs counts as failing after the timeout; one that throws carries its message', async () => {
    const health = new Health(new ManualClock(), { timeoutMs: 30 });
    health.add('hangs', () => new Promise(() => {}), { readiness: true });
    health.add('throws', () => Promise.reject(new Error('boom')), { readiness: false });
    health.add('optional', () => ({ status: 'degraded' }), { readiness: false });
    const started = performance.now();
    const report = await health.report('health');
    assert.ok(performance.now() - started < 1000);
    assert.equal(report.status, 'failing');
    assert.deepEqual([report.checks.hangs!.status, report.checks.hangs!.detail], ['failing', 'no answer within 30 ms']);
    assert.equal(report.checks.throws!.detail, 'boom');
    const readiness = await health.report('readiness');
    assert.deepEqual(Object.keys(readiness.checks), ['hangs']);
  });

  test('an optional channel that fails only degrades health; readiness is unaffected', async () => {
    const health = new Health(new ManualClock());
    health.add('database', () => ({ status: 'ok' }), { readiness: true });
    health.add('push', () => ({ status: 'degraded', detail: 'APNs refuses' }), { readiness: false });
    assert.equal((await health.report('health')).status, 'degraded');
    assert.equal((await health.report('readiness')).status, 'ok');
  });
});

describe('load shedding', () => {
  test('a nearly full heap: requests get 503 with Retry-After and a problem document; probes and metrics still answer', async (t) => {
    const app = await startTestApp({
      configure: (c) => (c.loadShedding = { maxEventLoopDelayMs: 0, maxHeapUsedBytes: 1, sampleIntervalMs: 10 }),
    });
    t.after(() => app.close());
    await sleep(50);
    const shed = await app.app.inject({ method: 'POST', url: '/v1/auth/register', payload: { platform: 'ios' } });
    assert.equal(shed.statusCode, 503);
    assert.equal(shed.headers['retry-after'], '5');
    assert.equal(shed.headers['content-type'], 'application/problem+json; charset=utf-8');
    assert.equal(problemOf(shed).code, 'SERVICE_UNAVAILABLE');
    assert.equal(problemOf(shed).requestId, shed.headers['x-request-id']);

    assert.equal((await get(app, '/livez')).statusCode, 200);
    const ready = await get(app, '/readyz');
    assert.equal(ready.statusCode, 503, 'readiness reports the overload so the load balancer prefers other instances');
    assert.match(ready.json().checks.load.detail, /^shedding load: .*heap/);
    const metrics = await get(app, '/metrics');
    assert.equal(metrics.statusCode, 200);
    assert.match(metrics.body, /navi_load_shed_total\{reason="heap"\} [1-9]/);
  });

  test('a blocked event loop: the requests that arrive right after are shed', async (t) => {
    const app = await startTestApp({
      configure: (c) => (c.loadShedding = { maxEventLoopDelayMs: 5, maxHeapUsedBytes: 0, sampleIntervalMs: 200 }),
    });
    t.after(() => app.close());
    assert.equal((await get(app, '/readyz')).statusCode, 200);
    busyWait(1000);
    // The delay shows at the next sample or the one after: ask until it does (or give up).
    let shed = await app.app.inject({ method: 'GET', url: '/v1/me' });
    for (let i = 0; i < 100 && shed.statusCode !== 503; i++) {
      await sleep(20);
      shed = await app.app.inject({ method: 'GET', url: '/v1/me' });
    }
    assert.equal(shed.statusCode, 503);
    assert.equal(problemOf(shed).code, 'SERVICE_UNAVAILABLE');
    assert.match((await get(app, '/metrics')).body, /navi_load_shed_total\{reason="event_loop_delay"\} [1-9]/);
  });
});
