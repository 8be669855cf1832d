import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.ts';
import { OpenApi } from '../support/openapi.ts';

/**
 * Issue 9, finding 6: requests racing the caller's own DELETE /v1/me
 * answered 500 (foreign-key violations), and concurrent replays of one
 * refresh token answered 404 "Device not found" where only 401 is
 * documented. Every race here runs on a real server with real concurrent
 * connections; every answer must be a status its route documents, with a
 * body matching the document.
 */
interface Session {
  userId: string;
  accessToken: string;
  refreshToken: string;
}

async function call(t: TestApp, method: string, path: string, token?: string, body?: unknown) {
  const response = await fetch(`${t.url}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, contentType: response.headers.get('content-type') ?? undefined, body: await response.text() };
}

const register = async (t: TestApp) =>
  JSON.parse((await call(t, 'POST', '/v1/auth/register', undefined, { platform: 'ios' })).body) as Session;

describe('races answer documented statuses', () => {
  const run = async (check: (t: TestApp, api: OpenApi) => Promise<void>) => {
    const t = await startTestApp({ listen: true, env: { RATE_LIMIT_AUTH_PER_MINUTE: '100000', RATE_LIMIT_PAIRING_PER_MINUTE: '100000' } });
    try {
      await check(t, await OpenApi.of(t.app));
    } finally {
      await t.close();
    }
  };
  const assertDocumented = (api: OpenApi, method: string, path: string, answers: Array<Awaited<ReturnType<typeof call>>>) => {
    const op = api.operation(method, path);
    for (const answer of answers) {
      assert.ok(answer.status < 500 || answer.status === 503, `${method} ${path}: ${answer.status} ${answer.body}`);
      assert.equal(api.mismatch(op, answer.status, answer.contentType, answer.body), undefined, `${method} ${path}`);
    }
  };

  for (const [method, path, body] of [
    ['POST', '/v1/devices', { platform: 'watchos' }],
    ['POST', '/v1/pairing-codes', undefined],
    ['PATCH', '/v1/me', { displayName: 'Sam' }],
    ['GET', '/v1/me', undefined],
    ['PUT', '/v1/devices/current/push-token', { provider: 'apns', token: 'ab'.repeat(32), environment: 'sandbox' }],
  ] as const) {
    test(`${method} ${path} racing the caller's own DELETE /v1/me`, () =>
      run(async (t, api) => {
        for (let round = 0; round < 5; round++) {
          const me = await register(t);
          const racing = Array.from({ length: 20 }, (_, i) =>
            i === 10 ? call(t, 'DELETE', '/v1/me', me.accessToken) : call(t, method, path, me.accessToken, body),
          );
          const answers = await Promise.all(racing);
          const deleted = answers.splice(10, 1);
          assert.equal(deleted[0]!.status, 204);
          assertDocumented(api, method, path, answers);
          // A request that lost the race is told the account is gone, like any later request.
          for (const answer of answers) if (answer.status >= 400) assert.equal(JSON.parse(answer.body).code, 'INVALID_TOKEN', answer.body);
        }
      }));
  }

  test('POST /v1/pairings racing the code creator deleting their account', () =>
    run(async (t, api) => {
      for (let round = 0; round < 10; round++) {
        const creator = await register(t);
        const joiner = await register(t);
        const { code } = JSON.parse((await call(t, 'POST', '/v1/pairing-codes', creator.accessToken)).body) as { code: string };
        const [deleted, redeemed] = await Promise.all([
          call(t, 'DELETE', '/v1/me', creator.accessToken),
          call(t, 'POST', '/v1/pairings', joiner.accessToken, { code }),
        ]);
        assert.equal(deleted.status, 204);
        assertDocumented(api, 'POST', '/v1/pairings', [redeemed]);
        // Whichever committed first: paired, or the code gone with its creator (404, or 409 on PostgreSQL when the claim finds it deleted).
        assert.ok([201, 404, 409, 503].includes(redeemed.status), redeemed.body);
      }
    }));

  test('concurrent replays of one spent refresh token are all 401, and sign the device out once', () =>
    run(async (t, api) => {
      for (let round = 0; round < 5; round++) {
        const me = await register(t);
        // Spend it, and let the grace window pass by spending the successor too.
        const next = JSON.parse((await call(t, 'POST', '/v1/auth/refresh', undefined, { refreshToken: me.refreshToken })).body) as Session;
        await call(t, 'POST', '/v1/auth/refresh', undefined, { refreshToken: next.refreshToken });
        const answers = await Promise.all(
          Array.from({ length: 12 }, () => call(t, 'POST', '/v1/auth/refresh', undefined, { refreshToken: me.refreshToken })),
        );
        assertDocumented(api, 'POST', '/v1/auth/refresh', answers);
        assert.deepEqual(new Set(answers.map((a) => `${a.status} ${JSON.parse(a.body).code}`)), new Set(['401 INVALID_TOKEN']));
        assert.equal((await call(t, 'GET', '/v1/me', next.accessToken)).status, 401, 'the replay signs the device out');
      }
    }));

  test('concurrent refreshes of one fresh token: one new pair, the rest 401 or the grace retry', () =>
    run(async (t, api) => {
      const me = await register(t);
      const answers = await Promise.all(
        Array.from({ length: 12 }, () => call(t, 'POST', '/v1/auth/refresh', undefined, { refreshToken: me.refreshToken })),
      );
      assertDocumented(api, 'POST', '/v1/auth/refresh', answers);
      assert.ok(answers.some((a) => a.status === 200));
    }));
});
