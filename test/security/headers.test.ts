import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.ts';
import { requestFrom, startForwardingProxy } from '../support/forwarding-proxy.ts';

/**
 * Issue 9, finding 9: no response carried security headers, token responses
 * could be cached, and there was no CORS policy to hold a web client to.
 */
const directives = (csp: string | null) =>
  new Map(
    (csp ?? '')
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .map(([name, ...values]) => [name, values.join(' ')]),
  );

describe('security headers', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ listen: true });
  });
  after(() => t.close());

  test('every API answer, errors included: nosniff, no framing, no referrer, nothing to run', async () => {
    const register = await fetch(`${t.url}/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"platform":"ios"}',
    });
    const responses = [
      register,
      await fetch(`${t.url}/v1/me`),
      await fetch(`${t.url}/v1/no-such-route`),
      await fetch(`${t.url}/health`),
      await fetch(`${t.url}/openapi.json`),
    ];
    for (const response of responses) {
      const where = `${response.url} ${response.status}`;
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff', where);
      assert.equal(response.headers.get('x-frame-options'), 'DENY', where);
      assert.equal(response.headers.get('referrer-policy'), 'no-referrer', where);
      const csp = directives(response.headers.get('content-security-policy'));
      assert.equal(csp.get('default-src'), "'none'", where);
      assert.equal(csp.get('frame-ancestors'), "'none'", where);
      // Plain HTTP: no HSTS (it belongs on HTTPS answers only).
      assert.equal(response.headers.get('strict-transport-security'), null, where);
    }
  });

  test('token answers are never stored by a cache', async () => {
    const register = await fetch(`${t.url}/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"platform":"ios"}',
    });
    const session = (await register.json()) as { accessToken: string; refreshToken: string };
    const refresh = await fetch(`${t.url}/v1/auth/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refreshToken: session.refreshToken }),
    });
    const fresh = (await refresh.json()) as { accessToken: string };
    const device = await fetch(`${t.url}/v1/devices`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${fresh.accessToken}` },
      body: '{"platform":"watchos"}',
    });
    const me = await fetch(`${t.url}/v1/me`, { headers: { authorization: `Bearer ${fresh.accessToken}` } });
    for (const response of [register, refresh, device, me]) {
      assert.ok(response.status < 300, `${response.url} ${response.status}`);
      assert.equal(response.headers.get('cache-control'), 'no-store', response.url);
    }
  });

  test('/docs works under its own policy: everything it loads comes from this origin', async () => {
    const page = await fetch(`${t.url}/docs/`);
    assert.equal(page.status, 200);
    const html = await page.text();
    const csp = directives(page.headers.get('content-security-policy'));
    assert.equal(csp.get('script-src'), "'self'");
    assert.equal(csp.get('style-src'), "'self'");
    assert.equal(csp.get('connect-src'), "'self'");
    assert.equal(csp.get('frame-ancestors'), "'none'");
    assert.doesNotMatch(html, /<script>|<style>|\son\w+=/i, 'no inline script or style, which the policy would block');
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    assert.ok(assets.length >= 4);
    for (const asset of assets) {
      assert.doesNotMatch(asset, /^(https?:)?\/\//, `${asset} is not same-origin`);
      const response = await fetch(new URL(asset, `${t.url}/docs/`));
      assert.equal(response.status, 200, asset);
      await response.arrayBuffer();
    }
    // The page fetches the document it shows from this origin too.
    const initializer = await (await fetch(`${t.url}/docs/static/swagger-initializer.js`)).text();
    assert.match(initializer, /url: resolveUrl\('\.\/json'\)/);
    assert.match(initializer, /validatorUrl: null/);
  });

  test('HSTS only on answers that came over HTTPS through a trusted proxy', async () => {
    const behindTls = await startTestApp({ listen: true, env: { TRUST_PROXY: '127.0.0.1' } });
    const proxy = await startForwardingProxy(behindTls.url, { proto: 'https' });
    try {
      const viaProxy = await fetch(`${proxy.url}/health`);
      assert.equal(viaProxy.headers.get('strict-transport-security'), 'max-age=31536000; includeSubDomains');
      // A client claiming HTTPS itself, from an address that is not a trusted proxy, gets none.
      const claimed = await requestFrom('127.0.0.2', `${behindTls.url}/health`, { headers: { 'x-forwarded-proto': 'https' } });
      assert.equal(claimed.headers['strict-transport-security'], undefined);
    } finally {
      await proxy.close();
      await behindTls.close();
    }
  });
});

describe('CORS', () => {
  const preflight = (url: string, origin: string) =>
    fetch(`${url}/v1/taps`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });

  test('nothing is allowed by default', async () => {
    const t = await startTestApp({ listen: true });
    try {
      const answer = await preflight(t.url, 'https://app.example.com');
      assert.equal(answer.headers.get('access-control-allow-origin'), null);
      const simple = await fetch(`${t.url}/health`, { headers: { origin: 'https://app.example.com' } });
      assert.equal(simple.headers.get('access-control-allow-origin'), null);
    } finally {
      await t.close();
    }
  });

  test('CORS_ORIGINS allows exactly the listed origins', async () => {
    const t = await startTestApp({ listen: true, env: { CORS_ORIGINS: 'https://app.example.com, http://localhost:5173' } });
    try {
      const allowed = await preflight(t.url, 'https://app.example.com');
      assert.equal(allowed.status, 204);
      assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://app.example.com');
      assert.match(allowed.headers.get('access-control-allow-headers') ?? '', /authorization/);
      assert.match(allowed.headers.get('access-control-allow-methods') ?? '', /POST/);
      assert.equal(allowed.headers.get('access-control-allow-credentials'), null);
      const simple = await fetch(`${t.url}/health`, { headers: { origin: 'http://localhost:5173' } });
      assert.equal(simple.headers.get('access-control-allow-origin'), 'http://localhost:5173');
      assert.match(simple.headers.get('access-control-expose-headers') ?? '', /retry-after/);
      for (const origin of ['https://evil.example', 'https://app.example.com.evil.example', 'null', 'https://APP.example.com']) {
        const refused = await preflight(t.url, origin);
        assert.equal(refused.headers.get('access-control-allow-origin'), null, origin);
      }
    } finally {
      await t.close();
    }
  });

  test('CORS_ORIGINS takes origins only', async () => {
    const { loadConfig } = await import('../../src/config.ts');
    assert.throws(() => loadConfig({ CORS_ORIGINS: 'https://app.example.com/path' }), /not an origin/);
    assert.throws(() => loadConfig({ CORS_ORIGINS: '*' }), /not an origin/);
    assert.deepEqual(loadConfig({ CORS_ORIGINS: 'https://a.example, https://b.example:8443' }).corsOrigins, [
      'https://a.example',
      'https://b.example:8443',
    ]);
  });
});
