import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { requestFrom, startForwardingProxy } from '../support/forwarding-proxy.ts';

/**
 * Issue 9, finding 3: with TRUST_PROXY=true the service believed the
 * client's own X-Forwarded-For, so per-address limits could be dodged by
 * writing a new address on every request (60 of 60 registrations passed, 40
 * of 40 behind a proxy that appended its hop). Now only hops appended by
 * trusted proxies are believed. Each test is real clients (distinct loopback
 * addresses) on real sockets, through a real proxy where there is one.
 */
const LIMIT = 5;
const env = (trustProxy?: string) => ({ RATE_LIMIT_AUTH_PER_MINUTE: String(LIMIT), ...(trustProxy ? { TRUST_PROXY: trustProxy } : {}) });

/** Registers `times` users from `client`, each request claiming a new address; answers the statuses. */
async function registerSpoofing(url: string, client: string, times: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < times; i++) {
    const response = await requestFrom(client, `${url}/v1/auth/register`, {
      method: 'POST',
      headers: { 'x-forwarded-for': `198.51.100.${i % 250}, 203.0.113.${i % 250}` },
      body: '{"platform":"ios"}',
    });
    statuses.push(response.status);
  }
  return statuses;
}

const count = (statuses: number[], status: number) => statuses.filter((s) => s === status).length;

async function withApp(trustProxy: string | undefined, run: (t: TestApp) => Promise<void>): Promise<void> {
  const t = await startTestApp({ listen: true, env: env(trustProxy) });
  try {
    await run(t);
  } finally {
    await t.close();
  }
}

describe('client addresses behind proxies (TRUST_PROXY)', () => {
  test('by default X-Forwarded-For is ignored: spoofed addresses share the real one budget', () =>
    withApp(undefined, async (t) => {
      const statuses = await registerSpoofing(t.url, '127.0.0.2', 60);
      assert.equal(count(statuses, 201), LIMIT, statuses.join(' '));
      assert.equal(count(statuses, 429), 60 - LIMIT);
    }));

  for (const trustProxy of ['1', '127.0.0.1']) {
    test(`TRUST_PROXY=${trustProxy} behind a proxy that appends its hop: only that hop is believed`, () =>
      withApp(trustProxy, async (t) => {
        const proxy = await startForwardingProxy(t.url);
        try {
          const spoofer = await registerSpoofing(proxy.url, '127.0.0.2', 40);
          assert.equal(count(spoofer, 201), LIMIT, spoofer.join(' '));
          assert.equal(count(spoofer, 429), 40 - LIMIT);
          // Another client behind the same proxy has a budget of its own.
          const neighbour = await registerSpoofing(proxy.url, '127.0.0.3', 1);
          assert.deepEqual(neighbour, [201]);
        } finally {
          await proxy.close();
        }
      }));
  }

  test('with trusted proxy addresses, a client reaching the service directly cannot claim an address', () =>
    withApp('10.0.0.0/8', async (t) => {
      const statuses = await registerSpoofing(t.url, '127.0.0.4', 20);
      assert.equal(count(statuses, 201), LIMIT, statuses.join(' '));
    }));

  test('TRUST_PROXY=true is refused at start with advice; addresses and counts are checked', () => {
    const refused = (value: string) => {
      try {
        loadConfig({ TRUST_PROXY: value });
      } catch (error) {
        assert.ok(error instanceof ConfigError);
        return error.problems.join('\n');
      }
      assert.fail(`TRUST_PROXY=${value} was accepted`);
    };
    assert.match(refused('true'), /TRUST_PROXY=1/);
    assert.match(refused('10.0.0.0/33'), /not an address/);
    assert.match(refused('proxy.internal'), /not an address/);
    assert.match(refused('11'), /between 0 and 10/);
    assert.equal(loadConfig({}).trustProxy, false);
    assert.equal(loadConfig({ TRUST_PROXY: '2' }).trustProxy, 2);
    assert.deepEqual(loadConfig({ TRUST_PROXY: '10.0.0.1, 10.1.0.0/16,loopback,fd00::/8' }).trustProxy, [
      '10.0.0.1',
      '10.1.0.0/16',
      'loopback',
      'fd00::/8',
    ]);
  });
});
