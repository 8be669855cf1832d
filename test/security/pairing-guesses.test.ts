import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { generateCode, formatCode } from '../../src/modules/pairing/codes.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { requestFrom } from '../support/forwarding-proxy.ts';

/**
 * Issue 9, finding 4: guesses were limited per user only, and accounts are
 * free, so one address pairing with a stranger's code had a chance of 3e-5
 * to 8e-3, and 10,000 addresses 0.26. Failed guesses now spend a budget per
 * client network and one for everyone; docs/security.md has the model. The
 * chance of a guess hitting one of C live codes is C / 32^8.
 */
const CODE_SPACE = 32 ** 8;
const LIVE_CODES = 1000;
const MANY_ACCOUNTS = { RATE_LIMIT_AUTH_PER_MINUTE: '1000000', RATE_LIMIT_PAIRING_PER_MINUTE: '1000000' };

interface Account {
  accessToken: string;
}

async function registerVia(t: TestApp, remoteAddress: string): Promise<Account> {
  const response = await t.app.inject({ method: 'POST', url: '/v1/auth/register', remoteAddress, payload: { platform: 'ios' } });
  assert.equal(response.statusCode, 201, response.body);
  return response.json<Account>();
}

async function guessVia(t: TestApp, account: Account, remoteAddress: string, code = formatCode(generateCode())) {
  const response = await t.app.inject({
    method: 'POST',
    url: '/v1/pairings',
    remoteAddress,
    headers: { authorization: `Bearer ${account.accessToken}` },
    payload: { code },
  });
  return { status: response.statusCode, retryAfter: response.headers['retry-after'], code: response.json<{ code?: string }>().code };
}

describe('pairing-code guessing budgets', () => {
  test('one address with any number of accounts gets 30 failed guesses an hour (real server, real sockets)', async () => {
    const t = await startTestApp({ listen: true, env: MANY_ACCOUNTS });
    try {
      const post = async (path: string, body: unknown, token?: string, from = '127.0.0.2') =>
        requestFrom(from, `${t.url}${path}`, {
          method: 'POST',
          headers: token ? { authorization: `Bearer ${token}` } : {},
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      const accounts = [];
      for (let i = 0; i < 12; i++) accounts.push(JSON.parse((await post('/v1/auth/register', { platform: 'ios' })).body) as Account);
      const statuses: number[] = [];
      let retryAfter: string | string[] | undefined;
      for (const account of accounts) {
        for (let i = 0; i < 20; i++) {
          const answer = await post('/v1/pairings', { code: formatCode(generateCode()) }, account.accessToken);
          statuses.push(answer.status);
          if (answer.status === 429) retryAfter = answer.headers['retry-after'];
        }
      }
      assert.equal(statuses.filter((s) => s === 404).length, 30, `${statuses.filter((s) => s === 404).length} guesses were looked up`);
      assert.equal(statuses.filter((s) => s === 429).length, 240 - 30);
      // One more guess comes back every 2 minutes.
      assert.ok(Number(retryAfter) > 0 && Number(retryAfter) <= 120, String(retryAfter));

      // Meanwhile an honest couple on another network pairs, even after a typo.
      const alex = JSON.parse((await post('/v1/auth/register', { platform: 'ios' }, undefined, '127.0.0.3')).body) as Account;
      const sam = JSON.parse((await post('/v1/auth/register', { platform: 'ios' }, undefined, '127.0.0.4')).body) as Account;
      const { code } = JSON.parse((await post('/v1/pairing-codes', undefined, alex.accessToken, '127.0.0.3')).body) as { code: string };
      const typo = code.startsWith('Z') ? `Y${code.slice(1)}` : `Z${code.slice(1)}`;
      assert.equal((await post('/v1/pairings', { code: typo }, sam.accessToken, '127.0.0.4')).status, 404);
      assert.equal((await post('/v1/pairings', { code }, sam.accessToken, '127.0.0.4')).status, 201);
    } finally {
      await t.close();
    }
  });

  test('only guesses that match nothing count: a right code, a used or own code cost nothing', async () => {
    const t = await startTestApp({ env: { ...MANY_ACCOUNTS, PAIRING_FAILED_GUESSES_PER_NETWORK_PER_HOUR: '2' } });
    try {
      const net = '192.0.2.10';
      const creator = await registerVia(t, '192.0.2.99');
      const joiner = await registerVia(t, net);
      const code = (
        await t.app.inject({ method: 'POST', url: '/v1/pairing-codes', headers: { authorization: `Bearer ${creator.accessToken}` } })
      ).json<{ code: string }>().code;
      const own = (
        await t.app.inject({ method: 'POST', url: '/v1/pairing-codes', headers: { authorization: `Bearer ${joiner.accessToken}` } })
      ).json<{ code: string }>().code;
      assert.equal((await guessVia(t, joiner, net, own)).code, 'CANNOT_PAIR_WITH_SELF');
      assert.equal((await guessVia(t, joiner, net, 'no such thing!')).code, 'INVALID_INPUT');
      assert.equal((await guessVia(t, joiner, net)).status, 404);
      assert.equal((await guessVia(t, joiner, net, code)).status, 201);
      const other = await registerVia(t, net);
      assert.equal((await guessVia(t, other, net, code)).code, 'PAIRING_CODE_USED');
      // One failed guess so far: one left, then the network is refused.
      assert.equal((await guessVia(t, other, net)).status, 404);
      assert.deepEqual((await guessVia(t, other, net)).status, 429);
      // An IPv6 client is one network per /64, whatever address in it it uses.
      const v6 = await registerVia(t, '2001:db8:1:2::1');
      const v6Statuses = [];
      for (let i = 0; i < 4; i++) v6Statuses.push((await guessVia(t, v6, `2001:db8:1:2:${i}:${i}:${i}:${i}`)).status);
      assert.deepEqual(v6Statuses, [404, 404, 429, 429]);
    } finally {
      await t.close();
    }
  });

  test('over a code lifetime (10 minutes), one network has its guesses looked up at most 35 times: P < 1e-6', async () => {
    const clock = new ManualClock(Date.now());
    const t = await startTestApp({ clock, env: MANY_ACCOUNTS });
    try {
      const net = '198.51.100.1';
      let looked = 0;
      let account = await registerVia(t, net);
      for (let second = 0; second <= 600; second += 10) {
        // The attacker tries as often as it is let, from a fresh account every time (without a budget: until 100).
        for (let tries = 0; tries < 100; tries++) {
          const { status } = await guessVia(t, account, net);
          if (status === 429) break;
          assert.equal(status, 404);
          looked++;
          account = await registerVia(t, net);
        }
        clock.advance(10_000);
      }
      assert.ok(looked <= 35, `${looked} guesses`);
      const chance = (looked * LIVE_CODES) / CODE_SPACE;
      assert.ok(chance < 1e-6, `chance ${chance}`);
    } finally {
      await t.close();
    }
  });

  test('the budget for everyone caps guesses from any number of networks', async () => {
    const clock = new ManualClock(Date.now());
    // Scaled down to run quickly: 30 a minute for everyone, 40 networks trying as often as they are let.
    const t = await startTestApp({ clock, env: { ...MANY_ACCOUNTS, PAIRING_FAILED_GUESSES_PER_MINUTE: '30' } });
    try {
      const networks = Array.from({ length: 40 }, (_, i) => `203.0.113.${i + 1}`);
      const accounts = await Promise.all(networks.map((net) => registerVia(t, net)));
      let looked = 0;
      for (let second = 0; second <= 600; second += 30) {
        for (let i = 0; i < networks.length; i++) {
          const { status } = await guessVia(t, accounts[i]!, networks[i]!);
          if (status === 404) looked++;
          else assert.equal(status, 429);
        }
        clock.advance(30_000);
      }
      const refused = await t.ctx.metrics.pairingGuessesRefused.get();
      const refusedForEveryone = refused.values.find((v) => v.labels.budget === 'global')?.value ?? 0;
      // A burst of 30, then 30 a minute for 10 minutes.
      assert.ok(looked <= 30 + 10 * 30, `${looked} guesses`);
      assert.ok(looked >= 10 * 30, `${looked} guesses: the budget should be used, not starved`);
      assert.ok(refusedForEveryone > 0);
    } finally {
      await t.close();
    }
  });
});
