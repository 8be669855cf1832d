import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.ts';
import { requestFrom } from '../support/forwarding-proxy.ts';
import { OpenApi } from '../support/openapi.ts';

/**
 * Issue 9, findings 6 and 7: bodyless routes parsed and rejected bodies
 * with whatever status the body provoked (400, 413, 415, none documented),
 * and a body trickled one byte every 2 s held a request for ~90 s although
 * the timeout is documented as 15 s.
 */
describe('request bodies', () => {
  let t: TestApp;
  let token: string;
  before(async () => {
    t = await startTestApp({ listen: true, env: { REQUEST_TIMEOUT_SECONDS: '2' } });
    const response = await fetch(`${t.url}/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"platform":"ios"}',
    });
    token = ((await response.json()) as { accessToken: string }).accessToken;
  });
  after(() => t.close());

  test('a route without a body refuses any body with 400 INVALID_INPUT, whatever its type or size, and documents it', async () => {
    const api = await OpenApi.of(t.app);
    // Every route without a body schema, GET included; path parameters filled with harmless values.
    const bodyless = api.operations.filter((op) => !op.body);
    assert.ok(bodyless.length >= 12, bodyless.map((op) => `${op.method} ${op.path}`).join(' '));
    const bodies: Array<[string | undefined, string]> = [
      ['application/json', '{}'],
      ['application/json', '{"not json'],
      ['text/plain', 'hello'],
      ['application/octet-stream', 'x'.repeat(10_000)],
      [undefined, 'raw'],
    ];
    for (const op of bodyless) {
      const url = `${t.url}${op.path.replace('{id}', crypto.randomUUID()).replace('{code}', 'ZZZZ-ZZZZ')}`;
      for (const [type, body] of bodies) {
        const response = await requestFrom('127.0.0.1', url, {
          method: op.method,
          headers: { authorization: `Bearer ${token}`, 'content-length': String(body.length), ...(type ? { 'content-type': type } : {}) },
          body,
        });
        const problem = JSON.parse(response.body) as { code: string };
        assert.equal(
          `${response.status} ${problem.code}`,
          '400 INVALID_INPUT',
          `${op.method} ${op.path} with ${type} ${body.slice(0, 20)}`,
        );
        assert.ok(api.documented(op).includes(400), `${op.method} ${op.path} documents 400`);
      }
    }
    // No body, or an empty one with a JSON type (clients that always send the header), is fine.
    const empty = await fetch(`${t.url}/v1/pairing-codes`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    });
    assert.equal(empty.status, 201);
  });

  /** Sends the head of a request at once, then its body one byte every `everyMs`; answers what came back and when. */
  function trickle(head: string, body: string, everyMs: number): Promise<{ firstLine: string; ms: number }> {
    const { port } = new URL(t.url);
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const socket = connect(Number(port), '127.0.0.1');
      let received = '';
      let i = 0;
      const timer = setInterval(() => {
        if (i < body.length && !socket.destroyed) socket.write(body[i++]!);
      }, everyMs);
      socket.write(head);
      socket.on('data', (chunk) => (received += chunk.toString()));
      socket.on('error', reject);
      socket.on('close', () => {
        clearInterval(timer);
        resolve({ firstLine: received.split('\r\n')[0] ?? '', ms: Date.now() - started });
      });
    });
  }

  test('a trickled body is cut at the request timeout with 408 and the connection closed', async () => {
    const body = JSON.stringify({ displayName: 'A slow loris who never finishes' });
    const head = `PATCH /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const { firstLine, ms } = await trickle(head, body, 300);
    assert.equal(firstLine, 'HTTP/1.1 408 Request Timeout');
    // Node checks its deadlines every second; the rest is a loaded machine's slack (before: 60 to 90 s).
    assert.ok(ms >= 2000 && ms < 4500, `${ms} ms`);
  });

  test('trickled headers are cut at the same deadline', async () => {
    const { firstLine, ms } = await trickle('', `GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ${'y'.repeat(100)}\r\n\r\n`, 200);
    assert.match(firstLine, /^(HTTP\/1.1 408 Request Timeout)?$/);
    // Node checks its deadlines every second; the rest is a loaded machine's slack (before: 60 to 90 s).
    assert.ok(ms >= 2000 && ms < 4500, `${ms} ms`);
  });

  test('a slow client that finishes in time is served', async () => {
    const body = JSON.stringify({ displayName: 'Sam' });
    const head = `PATCH /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
    const { firstLine } = await trickle(head, body, 1000 / body.length);
    assert.equal(firstLine, 'HTTP/1.1 200 OK');
  });

  test('the documented default is 15 s, enforced by the server itself', async () => {
    const defaults = await startTestApp();
    try {
      assert.equal(defaults.config.requestTimeoutMs, 15_000);
      assert.equal(defaults.app.server.requestTimeout, 15_000);
      assert.equal(defaults.app.server.headersTimeout, 15_000);
    } finally {
      await defaults.close();
    }
  });
});
