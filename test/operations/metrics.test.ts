import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { buildMetricsApp } from '../../src/modules/health/metrics-route.ts';
import { startTestApp } from '../support/app.ts';
import { problemOf, signUp } from '../support/clients.ts';

const TOKEN = 'metrics-token-0123456789';

describe('/metrics protection', () => {
  test('development: open on the main port', async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const r = await app.app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(r.statusCode, 200);
    assert.match(r.body, /^# HELP /m);
  });

  test('METRICS_TOKEN: no token is 401 UNAUTHORIZED, a wrong one 401 INVALID_TOKEN, the right one the metrics', async (t) => {
    const app = await startTestApp({ env: { METRICS_TOKEN: TOKEN } });
    t.after(() => app.close());
    const scrape = (authorization?: string) =>
      app.app.inject({ method: 'GET', url: '/metrics', headers: authorization ? { authorization } : {} });
    assert.equal(problemOf(await scrape()).code, 'UNAUTHORIZED');
    const wrong = await scrape(`Bearer ${TOKEN.slice(0, -1)}x`);
    assert.equal(wrong.statusCode, 401);
    assert.equal(problemOf(wrong).code, 'INVALID_TOKEN');
    assert.equal((await scrape(`Bearer ${TOKEN}x`)).statusCode, 401, 'a longer token is not a match either');
    const right = await scrape(`Bearer ${TOKEN}`);
    assert.equal(right.statusCode, 200);
    assert.match(right.body, /navi_http_request_duration_seconds/);
  });

  test('production without a token or a port: /metrics is not served', async (t) => {
    const app = await startTestApp({ env: { NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40) } });
    t.after(() => app.close());
    const r = await app.app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(r.statusCode, 404);
  });

  test('METRICS_PORT: only on the separate listener (with the token when set), never on the public port', async (t) => {
    const app = await startTestApp({ env: { METRICS_PORT: '9464', METRICS_TOKEN: TOKEN } });
    const metricsApp = buildMetricsApp(app.ctx);
    await metricsApp.listen({ host: '127.0.0.1', port: 0 });
    t.after(async () => {
      await metricsApp.close();
      await app.close();
    });
    assert.equal((await app.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } })).statusCode, 404);
    const url = `http://127.0.0.1:${(metricsApp.server.address() as AddressInfo).port}/metrics`;
    assert.equal((await fetch(url)).status, 401);
    const scraped = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(scraped.status, 200);
    assert.match(await scraped.text(), /navi_ws_connections /);
    assert.equal((await fetch(url.replace('/metrics', '/v1/me'))).status, 404, 'the metrics listener serves nothing else');
  });

  test('configuration mistakes are refused at start', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
        return '';
      } catch (error) {
        assert.ok(error instanceof ConfigError);
        return error.problems.join('\n');
      }
    };
    assert.match(problems({ METRICS_TOKEN: 'short' }), /METRICS_TOKEN must be at least 16 characters/);
    assert.match(problems({ METRICS_PORT: '3000' }), /METRICS_PORT must differ from PORT/);
    assert.match(problems({ SHUTDOWN_DELAY_SECONDS: '10' }), /must be shorter than SHUTDOWN_GRACE_SECONDS/);
    assert.equal(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40) }).shutdownDelayMs, 5000);
    assert.equal(loadConfig({}).shutdownDelayMs, 0);
  });
});

describe('request log lines', () => {
  test('carry the user and device id once authenticated, never the token', async (t) => {
    const lines: Array<Record<string, unknown>> = [];
    const raw: string[] = [];
    const logger = createLogger({ logLevel: 'info' }, { write: (line: string) => void (raw.push(line), lines.push(JSON.parse(line))) });
    const app = await startTestApp({ logger });
    t.after(() => app.close());
    const alex = await signUp(app);
    await alex.request('GET', '/v1/me');
    const me = lines.find((l) => l.msg === 'request' && l.route === '/v1/me');
    assert.ok(me, 'a request line for /v1/me');
    assert.equal(me.userId, alex.userId);
    assert.equal(me.deviceId, alex.deviceId);
    assert.equal(me.status, 200);
    const register = lines.find((l) => l.msg === 'request' && l.route === '/v1/auth/register');
    assert.equal(register?.userId, undefined, 'no principal on an anonymous request');
    assert.ok(!raw.join('').includes(alex.accessToken) && !raw.join('').includes(alex.refreshToken));
  });
});
