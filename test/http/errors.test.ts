import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ERROR_CATALOG } from '../../src/errors.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { pair, problemOf, signUp, type User } from '../support/clients.ts';

describe('bad input gets a problem document, never a crash', () => {
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

  const postTap = (payload: string | object, headers: Record<string, string> = {}) =>
    t.app.inject({
      method: 'POST',
      url: '/v1/taps',
      headers: { authorization: `Bearer ${alex.accessToken}`, 'content-type': 'application/json', ...headers },
      payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    });

  function assertProblem(response: Awaited<ReturnType<typeof postTap>>, status: number, code: string, detail?: RegExp) {
    assert.equal(response.statusCode, status, response.body);
    assert.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8');
    const problem = problemOf(response);
    assert.equal(problem.code, code);
    assert.equal(problem.status, status);
    assert.equal(problem.title, ERROR_CATALOG[code as keyof typeof ERROR_CATALOG].title);
    assert.equal(problem.type, `urn:navi:error:${code}`);
    assert.equal(problem.requestId, response.headers['x-request-id']);
    if (detail) assert.match(problem.detail, detail);
  }

  test('malformed JSON', async () => {
    assertProblem(await postTap('{"to": '), 400, 'INVALID_INPUT', /not valid JSON/);
  });

  test('wrong types are not coerced', async () => {
    assertProblem(await postTap({ to: sam.userId, intensity: 5, pattern: 'single' }), 400, 'INVALID_INPUT', /body\.intensity/);
    assertProblem(await postTap({ to: 42, intensity: 'light', pattern: 'single' }), 400, 'INVALID_INPUT', /body\.to/);
    assertProblem(await postTap([]), 400, 'INVALID_INPUT');
    assertProblem(await postTap('"just a string"'), 400, 'INVALID_INPUT');
  });

  test('missing and unknown fields, unknown enum values', async () => {
    assertProblem(await postTap({ to: sam.userId, intensity: 'light' }), 400, 'INVALID_INPUT', /body\.pattern is required/);
    assertProblem(
      await postTap({ to: sam.userId, intensity: 'light', pattern: 'single', admin: true }),
      400,
      'INVALID_INPUT',
      /body\.admin is not a known field/,
    );
    assertProblem(
      await postTap({ to: sam.userId, intensity: 'extreme', pattern: 'single' }),
      400,
      'INVALID_INPUT',
      /light, medium, strong/,
    );
    assertProblem(await postTap({ id: 'not-a-uuid', to: sam.userId, intensity: 'light', pattern: 'single' }), 400, 'INVALID_INPUT', /uuid/);
  });

  test('oversized bodies get 413', async () => {
    assertProblem(
      await postTap({ to: sam.userId, intensity: 'light', pattern: 'single', pad: 'x'.repeat(10_000) }),
      413,
      'PAYLOAD_TOO_LARGE',
    );
  });

  test('non-JSON bodies get 415', async () => {
    assertProblem(await postTap('to=x', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  test('an empty JSON body on a bodiless route is accepted; on a route with a body it is invalid', async () => {
    const code = await t.app.inject({
      method: 'POST',
      url: '/v1/pairing-codes',
      headers: { authorization: `Bearer ${alex.accessToken}`, 'content-type': 'application/json' },
      payload: '',
    });
    assert.equal(code.statusCode, 201);
    assertProblem(await postTap(''), 400, 'INVALID_INPUT');
  });

  test('unknown routes and bad path parameters', async () => {
    const missing = await t.app.inject({ method: 'GET', url: '/v1/nothing-here' });
    assertProblem(missing, 404, 'NOT_FOUND');
    const badId = await alex.request('GET', '/v1/taps/not-a-uuid');
    assertProblem(badId, 400, 'INVALID_INPUT', /params\.id/);
  });

  test('the request id is honoured when sane and generated otherwise', async () => {
    const given = await t.app.inject({ method: 'GET', url: '/v1/nothing', headers: { 'x-request-id': 'abc-123' } });
    assert.equal(given.headers['x-request-id'], 'abc-123');
    assert.equal(problemOf(given).requestId, 'abc-123');
    const hostile = await t.app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'x'.repeat(500) } });
    assert.match(String(hostile.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  });

  test("another user's device cannot be removed (404, and it keeps working)", async () => {
    const r = await sam.request('DELETE', `/v1/devices/${alex.deviceId}`);
    assertProblem(r, 404, 'NOT_FOUND');
    assert.equal((await alex.request('GET', '/v1/me')).statusCode, 200);
  });

  test('health reports each configured check (no push check without APNs)', async () => {
    const r = await t.app.inject({ method: 'GET', url: '/health' });
    assert.equal(r.statusCode, 200);
    const body = r.json();
    assert.equal(body.status, 'ok');
    assert.deepEqual(Object.keys(body.checks).sort(), ['database', 'load', 'websocket']);
    assert.equal(body.checks.websocket.connections, 0);
  });
});
