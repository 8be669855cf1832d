import assert from 'node:assert/strict';
import { generateKeyPairSync, verify } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { ProviderToken, loadSigningKey } from '../../src/push/apns/provider-token.ts';
import { createTestApnsKey } from '../support/fake-apns.ts';

const MINUTE = 60_000;

function tokenFor(clock = new ManualClock()) {
  const key = createTestApnsKey();
  return { key, clock, token: new ProviderToken({ key: key.privateKeyPem, keyId: key.keyId, teamId: key.teamId, clock }) };
}

function decode(jwt: string) {
  const [header, claims, signature] = jwt.split('.') as [string, string, string];
  return {
    header: JSON.parse(Buffer.from(header, 'base64url').toString()) as Record<string, unknown>,
    claims: JSON.parse(Buffer.from(claims, 'base64url').toString()) as Record<string, unknown>,
    signingInput: `${header}.${claims}`,
    signature: Buffer.from(signature, 'base64url'),
  };
}

test('the token is an ES256 JWT Apple can verify with the public key', () => {
  const { key, clock, token } = tokenFor(new ManualClock(Date.UTC(2026, 0, 1, 12, 0, 0, 700)));
  const jwt = decode(token.current());
  assert.deepEqual(jwt.header, { alg: 'ES256', kid: key.keyId });
  assert.deepEqual(jwt.claims, { iss: key.teamId, iat: Math.floor(clock.now() / 1000) });
  assert.equal(jwt.signature.length, 64, 'raw r||s, not DER');
  assert.ok(verify('sha256', Buffer.from(jwt.signingInput), { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, jwt.signature));
});

test('the same token is reused until it is 50 minutes old, then replaced', () => {
  const { clock, token } = tokenFor();
  const first = token.current();
  clock.advance(49 * MINUTE);
  assert.equal(token.current(), first);
  clock.advance(MINUTE);
  const second = token.current();
  assert.notEqual(second, first);
  assert.equal(decode(second).claims.iat, Math.floor(clock.now() / 1000));
  assert.equal(token.current(), second);
});

test('an expired answer renews a token older than 20 minutes', () => {
  const { clock, token } = tokenFor();
  const rejected = token.current();
  clock.advance(25 * MINUTE);
  const renewed = token.renewAfterExpired(rejected);
  assert.ok(renewed !== undefined && renewed !== rejected);
  assert.equal(token.current(), renewed);
});

test('an expired answer does not renew a token younger than 20 minutes', () => {
  const { clock, token } = tokenFor();
  const rejected = token.current();
  clock.advance(19 * MINUTE);
  assert.equal(token.renewAfterExpired(rejected), undefined);
  assert.equal(token.current(), rejected);
});

test('requests rejected with an already replaced token retry with the current one, without another renewal', () => {
  const { clock, token } = tokenFor();
  const old = token.current();
  clock.advance(30 * MINUTE);
  const renewed = token.renewAfterExpired(old);
  // Nine more requests that were in flight with the old token come back expired.
  for (let i = 0; i < 9; i += 1) assert.equal(token.renewAfterExpired(old), renewed);
});

test('however often APNs says expired, a new token is issued at most once every 20 minutes', () => {
  const { clock, token } = tokenFor();
  const issuedAt: number[] = [];
  let last = '';
  for (let minute = 0; minute < 6 * 60; minute += 1) {
    for (const candidate of [token.current(), token.renewAfterExpired(token.current())]) {
      if (candidate !== undefined && candidate !== last) {
        issuedAt.push(clock.now());
        last = candidate;
      }
    }
    clock.advance(MINUTE);
  }
  const gaps = issuedAt.slice(1).map((at, i) => at - (issuedAt[i] ?? 0));
  assert.ok(gaps.length >= 10, 'kept renewing over six hours');
  assert.ok(Math.min(...gaps) >= 20 * MINUTE, `gaps were ${gaps.map((g) => g / MINUTE).join(', ')} minutes`);
});

test('the key is read from a file, or from PEM text with escaped newlines', async (t) => {
  const key = createTestApnsKey();
  const dir = await mkdtemp(join(tmpdir(), 'navi-p8-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'AuthKey.p8');
  await writeFile(path, key.privateKeyPem);
  assert.equal(loadSigningKey({ path }).asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.equal(loadSigningKey({ pem: key.privateKeyPem.replace(/\n/g, '\\n') }).asymmetricKeyDetails?.namedCurve, 'prime256v1');
});

test('a key that is not an EC P-256 private key is refused at start-up without quoting it', () => {
  const clock = new ManualClock();
  const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  assert.throws(() => new ProviderToken({ key: p384, keyId: 'K', teamId: 'T', clock }), /EC P-256/);
  const garbage = 'not-a-key-SECRETSECRET';
  assert.throws(
    () => loadSigningKey({ pem: garbage }),
    (error: Error) => /not a PEM private key/.test(error.message) && !error.message.includes('SECRETSECRET'),
  );
});
