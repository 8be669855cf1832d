import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import type { ErrorCode } from '../../src/errors.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { pair, problemOf, sendTap, signUp, type User } from '../support/clients.ts';

/**
 * Bugs the property tests (property.test.ts) found in the HTTP API, pinned as
 * plain examples of the fixed behaviour.
 */
describe('HTTP regressions found by the properties', () => {
  let t: TestApp;
  let alex: User;
  let sam: User;
  before(async () => {
    t = await startTestApp();
    alex = await signUp(t);
    sam = await signUp(t);
    await pair(alex, sam);
  });
  after(() => t.close());

  /** A problem document with this status and code, the request id in header and body; answers the fields it names. */
  function assertProblem(response: LightMyRequestResponse, status: number, code: ErrorCode): string[] | undefined {
    assert.equal(response.statusCode, status, response.body);
    assert.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8');
    const problem = problemOf(response);
    assert.equal(problem.code, code);
    assert.equal(problem.status, status);
    assert.equal(typeof response.headers['x-request-id'], 'string');
    assert.equal(problem.requestId, response.headers['x-request-id']);
    const errors = response.json<{ errors?: Array<{ field: string }> }>().errors;
    return errors && [...new Set(errors.map((e) => e.field))];
  }

  describe('cursors are at most 15 digits, so every one is an exact number (was: 16 digits lost precision above 2^53, 500)', () => {
    test('a 15-digit cursor is answered as given', async () => {
      const caughtUp = await alex.request('GET', '/v1/taps?after=999999999999999');
      assert.equal(caughtUp.statusCode, 200, caughtUp.body);
      assert.deepEqual(caughtUp.json(), { taps: [], nextCursor: '999999999999999', hasMore: false });
      const pagedBack = await alex.request('GET', '/v1/taps?before=999999999999999');
      assert.equal(pagedBack.statusCode, 200, pagedBack.body);
    });

    test('16 digits and more are 400 INVALID_INPUT naming the parameter', async () => {
      for (const cursor of ['1000000000000000', '0000000000000001', '9007199254740993', '9999999999999999', '99999999999999999']) {
        for (const name of ['after', 'before']) {
          const fields = assertProblem(await alex.request('GET', `/v1/taps?${name}=${cursor}`), 400, 'INVALID_INPUT');
          assert.deepEqual(fields, [`querystring.${name}`]);
        }
      }
    });
  });

  describe('names refuse control characters, U+0000 to U+001F and U+007F (was: U+0000 a 500 on PostgreSQL)', () => {
    const controls = ['\u0000', '\u0001', '\t', '\n', '\r', '\u001b', '\u001f', '\u007f'];

    test('PATCH /v1/me: 400 INVALID_INPUT on body.displayName, the name unchanged', async () => {
      await alex.request('PATCH', '/v1/me', { displayName: 'Alex' });
      for (const control of controls) {
        const response = await alex.request('PATCH', '/v1/me', { displayName: `Al${control}ex` });
        assert.deepEqual(assertProblem(response, 400, 'INVALID_INPUT'), ['body.displayName'], JSON.stringify(control));
      }
      assert.equal((await alex.request('GET', '/v1/me')).json().user.displayName, 'Alex');
    });

    test('POST /v1/devices and POST /v1/auth/register: 400 INVALID_INPUT on body.name, no device made', async () => {
      const devicesBefore = (await alex.request('GET', '/v1/me')).json().devices;
      for (const control of controls) {
        const name = `Watch${control}`;
        const added = await alex.request('POST', '/v1/devices', { platform: 'watchos', name });
        assert.deepEqual(assertProblem(added, 400, 'INVALID_INPUT'), ['body.name'], JSON.stringify(control));
        const registered = await t.app.inject({ method: 'POST', url: '/v1/auth/register', payload: { platform: 'ios', name } });
        assert.deepEqual(assertProblem(registered, 400, 'INVALID_INPUT'), ['body.name'], JSON.stringify(control));
      }
      assert.deepEqual((await alex.request('GET', '/v1/me')).json().devices, devicesBefore);
    });

    test('the characters around them are still text', async () => {
      const name = ' ~\u0080\u00a0é\u{1F44B}';
      const response = await alex.request('POST', '/v1/devices', { platform: 'web', name });
      assert.equal(response.statusCode, 201, response.body);
      const renamed = await alex.request('PATCH', '/v1/me', { displayName: `Alex${name}` });
      assert.equal(renamed.json().user.displayName, `Alex${name}`.trim());
    });
  });

  test('a URL with a malformed percent-escape is a 400 INVALID_INPUT problem document (was: the router answered on its own)', async () => {
    for (const url of ['/v1/taps/%zz', '/v1/pairing-codes/%E0%A4%A', '/v1/devices/%', '/v1/taps/%C3%28']) {
      assertProblem(await alex.request('GET', url), 400, 'INVALID_INPUT');
    }
  });

  test('a path parameter over 200 characters is a 400 INVALID_INPUT problem document (was: a bare 414)', async () => {
    assertProblem(await alex.request('GET', `/v1/pairing-codes/${'x'.repeat(201)}`), 400, 'INVALID_INPUT');
    assertProblem(await alex.request('DELETE', `/v1/devices/${'a'.repeat(500)}`), 400, 'INVALID_INPUT');
    // At the limit, the route's own schema answers.
    const fields = assertProblem(await alex.request('GET', `/v1/pairing-codes/${'x'.repeat(200)}`), 400, 'INVALID_INPUT');
    assert.deepEqual(fields, ['params.code']);
  });

  describe('ids are UUIDs in any case, answered lower case (was: compared as case-sensitive text, 403 NOT_PAIRED)', () => {
    test("the partner's id in upper case names the partner", async () => {
      const response = await alex.request('POST', '/v1/taps', { to: sam.userId.toUpperCase(), intensity: 'light', pattern: 'single' });
      assert.equal(response.statusCode, 201, response.body);
      assert.equal(response.json().tap.to, sam.userId);
    });

    test('a tap id sent in upper case is stored lower case, and resending it in lower case is the same tap', async () => {
      const id = crypto.randomUUID();
      const body = { id: id.toUpperCase(), to: sam.userId, intensity: 'strong', pattern: 'heartbeat' };
      const created = await alex.request('POST', '/v1/taps', body);
      assert.equal(created.statusCode, 201, created.body);
      assert.equal(created.json().tap.id, id);
      const resent = await alex.request('POST', '/v1/taps', { ...body, id });
      assert.equal(resent.statusCode, 200, resent.body);
      assert.deepEqual(resent.json().tap, created.json().tap);
      const conflicting = await alex.request('POST', '/v1/taps', { ...body, id, pattern: 'single' });
      assertProblem(conflicting, 422, 'IDEMPOTENCY_CONFLICT');
    });

    test('path and query ids in upper case name the same things', async () => {
      const tap = await sendTap(sam, alex);
      const fetched = await alex.request('GET', `/v1/taps/${tap.id.toUpperCase()}`);
      assert.equal(fetched.statusCode, 200, fetched.body);
      assert.equal(fetched.json().tap.id, tap.id);
      const acked = await alex.request('POST', `/v1/taps/${tap.id.toUpperCase()}/ack`, { status: 'seen' });
      assert.equal(acked.statusCode, 204, acked.body);
      const upper = await alex.request('GET', `/v1/taps?with=${sam.userId.toUpperCase()}`);
      assert.equal(upper.statusCode, 200, upper.body);
      assert.deepEqual(upper.json(), (await alex.request('GET', `/v1/taps?with=${sam.userId}`)).json());
      assert.ok(upper.json().taps.some((listed: { id: string }) => listed.id === tap.id));
    });

    test('the urn:uuid: prefix is 400 INVALID_INPUT, in bodies, paths and queries', async () => {
      const urn = (id: string) => `urn:uuid:${id}`;
      const tap = await sendTap(alex, sam);
      const cases: Array<[Promise<LightMyRequestResponse>, string]> = [
        [alex.request('POST', '/v1/taps', { to: urn(sam.userId), intensity: 'light', pattern: 'single' }), 'body.to'],
        [
          alex.request('POST', '/v1/taps', { id: urn(crypto.randomUUID()), to: sam.userId, intensity: 'light', pattern: 'single' }),
          'body.id',
        ],
        [alex.request('GET', `/v1/taps/${urn(tap.id)}`), 'params.id'],
        [alex.request('GET', `/v1/taps?with=${urn(sam.userId)}`), 'querystring.with'],
        [alex.request('DELETE', `/v1/devices/${urn(alex.deviceId).toUpperCase()}`), 'params.id'],
      ];
      for (const [response, field] of cases) assert.deepEqual(assertProblem(await response, 400, 'INVALID_INPUT'), [field]);
    });
  });

  test('a text/plain body is 415 UNSUPPORTED_MEDIA_TYPE and changes nothing (was: parsed as a string, 400)', async () => {
    await alex.request('PATCH', '/v1/me', { displayName: 'Alex' });
    for (const contentType of ['text/plain', 'text/plain; charset=utf-8']) {
      const response = await alex.request('PATCH', '/v1/me', '{"displayName":"Plain"}', { 'content-type': contentType });
      assertProblem(response, 415, 'UNSUPPORTED_MEDIA_TYPE');
    }
    assert.equal((await alex.request('GET', '/v1/me')).json().user.displayName, 'Alex');
  });
});
