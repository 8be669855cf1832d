import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.ts';
import { WsClient } from '../support/ws-client.ts';

/**
 * Issue 9, finding 5: the hand-written HS256 verifier never checked `nbf`,
 * accepted a future `iat` and an `exp` a century away, and let non-canonical
 * base64 signatures verify. Tokens here are forged with the service's own
 * secret, so only the claim checks stand between them and the API; each is
 * tried on HTTP and on the WebSocket upgrade.
 */
const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

describe('tokens the verifier refuses, even when correctly signed', () => {
  let t: TestApp;
  let userId: string;
  let deviceId: string;
  let issued: string;
  const now = () => Math.floor(Date.now() / 1000);

  const sign = (header: Record<string, unknown>, claims: Record<string, unknown>) => {
    const input = `${b64(header)}.${b64(claims)}`;
    return `${input}.${createHmac('sha256', t.config.auth.jwtSecret).update(input).digest('base64url')}`;
  };
  const access = (overrides: Record<string, unknown> = {}, header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' }) =>
    sign(header, { sub: userId, did: deviceId, typ: 'access', iss: 'navi', aud: 'navi-app', iat: now(), exp: now() + 900, ...overrides });

  const httpStatus = async (token: string) => {
    const response = await fetch(`${t.url}/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await response.json()) as { code?: string };
    return response.status === 200 ? 200 : `${response.status} ${body.code}`;
  };
  const upgrade = (token: string) =>
    WsClient.connect(t.wsUrl, token).then(
      async (ws) => {
        ws.socket.close();
        return 'open';
      },
      (error: Error) => error.message,
    );

  before(async () => {
    t = await startTestApp({ listen: true });
    const response = await fetch(`${t.url}/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"platform":"ios"}',
    });
    ({ userId, deviceId, accessToken: issued } = (await response.json()) as { userId: string; deviceId: string; accessToken: string });
  });
  after(() => t.close());

  test('a token forged the way the service signs is accepted (the forgery below is faithful)', async () => {
    assert.equal(await httpStatus(issued), 200);
    assert.equal(await httpStatus(access()), 200);
    assert.equal(await upgrade(access()), 'open');
  });

  const refused: Array<[string, () => string]> = [
    ['nbf in the future', () => access({ nbf: now() + 3600 })],
    ['iat an hour in the future', () => access({ iat: now() + 3600, exp: now() + 4000 })],
    ['exp a hundred years ahead', () => access({ exp: now() + 100 * 365 * 86_400 })],
    ['an access token living longer than any this service issues', () => access({ iat: now() - 10, exp: now() + 2 * 86_400 })],
    ['exp already passed', () => access({ iat: now() - 1000, exp: now() - 1 })],
    ['no exp', () => access({ exp: undefined })],
    ['no iat', () => access({ iat: undefined })],
    ['another issuer', () => access({ iss: 'someone-else' })],
    ['another audience', () => access({ aud: 'navi-admin' })],
    ['a refresh token as access token', () => access({ typ: 'refresh' })],
    [
      'alg none',
      () =>
        `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: userId, did: deviceId, typ: 'access', iss: 'navi', aud: 'navi-app', iat: now(), exp: now() + 900 })}.`,
    ],
    ['alg HS512 in the header', () => access({}, { alg: 'HS512', typ: 'JWT' })],
    ['no typ header', () => access({}, { alg: 'HS256' })],
    ['another typ header', () => access({}, { alg: 'HS256', typ: 'at+jwt' })],
    [
      'a non-canonical signature (the last character with stray low bits)',
      () => {
        const token = access();
        const last = token.at(-1)!;
        // base64url's last of 43 characters carries 4 bits and 2 padding bits; set a padding bit.
        const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
        return token.slice(0, -1) + alphabet[alphabet.indexOf(last) | 1];
      },
    ],
    ['a padded signature', () => `${access()}=`],
    ['a signature with a character of standard base64', () => `${access().slice(0, -1)}+`],
  ];
  for (const [what, make] of refused) {
    test(`refused: ${what}`, async () => {
      const token = make();
      assert.equal(await httpStatus(token), '401 INVALID_TOKEN');
      assert.match(await upgrade(token), /upgrade refused: 401/);
    });
  }
});
