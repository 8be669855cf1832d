import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { createErrorReporter } from '../../src/error-reporting.ts';
import { createLogger } from '../../src/logger.ts';
import { startTestApp } from '../support/app.ts';

/**
 * Error reporting runs on @sentry/core (two small packages) instead of
 * @sentry/node (41), and only when SENTRY_DSN is set. A local HTTP server
 * stands in for Sentry's ingest endpoint.
 */
describe('error reporting', () => {
  test('without SENTRY_DSN there is no reporter at all', async () => {
    assert.equal(await createErrorReporter({ env: 'test' }, createLogger({ logLevel: 'silent' })), undefined);
  });

  test('a 5xx reaches Sentry with its request id and route; the client sees only a problem document', async () => {
    const received: string[] = [];
    const sentry = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        received.push(`${request.method} ${request.url}\n${body}`);
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => sentry.listen(0, '127.0.0.1', resolve));
    const { port } = sentry.address() as AddressInfo;
    const reporter = await createErrorReporter(
      { env: 'test', sentryDsn: `http://public@127.0.0.1:${port}/42` },
      createLogger({ logLevel: 'silent' }),
    );
    assert.ok(reporter);
    const t = await startTestApp({ onServerError: reporter.report });
    const { app } = t;
    app.get('/v1/boom', { schema: { hide: true } }, async () => {
      throw new Error('the flux capacitor broke');
    });
    try {
      const response = await app.inject({ method: 'GET', url: '/v1/boom', headers: { 'x-request-id': 'req-for-sentry' } });
      assert.equal(response.statusCode, 500);
      assert.doesNotMatch(response.body, /flux capacitor/);
      await reporter.close();
      const envelope = received.join('\n');
      assert.match(envelope, /^POST \/api\/42\/envelope\//);
      assert.match(envelope, /the flux capacitor broke/);
      assert.match(envelope, /"requestId":"req-for-sentry"/);
      assert.match(envelope, /"route":"\/v1\/boom"/);
      assert.match(envelope, /"environment":"test"/);
    } finally {
      await t.close();
      await new Promise((resolve) => sentry.close(resolve));
    }
  });
});
