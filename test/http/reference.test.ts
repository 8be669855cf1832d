import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { startTestApp } from '../support/app.ts';

const packageVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
/** The Fastify logo @fastify/swagger-ui shows when it is given none. */
const frameworkLogo = readFileSync(
  join(dirname(createRequire(import.meta.url).resolve('@fastify/swagger-ui/package.json')), 'static', 'logo.svg'),
).toString('base64');

async function app(t: TestContext, env: Record<string, string> = {}) {
  const started = await startTestApp({ env });
  t.after(() => started.close());
  return (url: string) => started.app.inject({ method: 'GET', url });
}

test("the interactive reference is Navi's: its title and logo, and it loads /openapi.json", async (t) => {
  const get = await app(t);
  const page = await get('/docs');
  assert.equal(page.statusCode, 200);
  assert.match(page.body, /<title>Navi API reference<\/title>/);
  assert.match(page.body, /rel="icon" type="image\/svg\+xml" href="[^"]*\/theme\/navi\.svg"/);
  assert.doesNotMatch(page.body, /favicon-32x32\.png/, 'no Swagger favicon');

  const initializer = (await get('/docs/static/swagger-initializer.js')).body;
  assert.match(initializer, /"urls":\[\{"url":"\/openapi\.json","name":"Navi API"\}\]/);
  assert.ok(!initializer.includes(frameworkLogo), 'the framework logo is not shown');
  const logo = /data:image\/svg\+xml;base64,([A-Za-z0-9+/=]+)/.exec(initializer)?.[1];
  assert.match(Buffer.from(logo ?? '', 'base64').toString(), />Navi<\/text>/);
  assert.equal((await get('/docs/static/theme/navi.svg')).headers['content-type'], 'image/svg+xml');
});

test('the OpenAPI document carries the package version and links the documents it mentions, which are served', async (t) => {
  const get = await app(t);
  const { info } = (await get('/openapi.json')).json<{ info: { version: string; description: string } }>();
  assert.equal(info.version, packageVersion);
  const links = [...info.description.matchAll(/\]\((\/[^)]+)\)/g)].map((match) => match[1]!);
  assert.deepEqual(links, [
    '/docs/websocket.md',
    '/docs/asyncapi.json',
    '/docs/delivery.md',
    '/docs/push.md',
    '/docs/errors.md',
    '/openapi.json',
  ]);
  for (const link of links) {
    const response = await get(link);
    assert.equal(response.statusCode, 200, link);
  }
  const websocket = await get('/docs/websocket.md');
  assert.equal(websocket.headers['content-type'], 'text/plain; charset=utf-8');
  assert.equal(websocket.body, readFileSync(new URL('../../docs/websocket.md', import.meta.url), 'utf8'));
  assert.equal((await get('/docs/asyncapi.json')).json<{ info: { version: string } }>().info.version, packageVersion);
});

test('only the linked documents are served: other names and path tricks are not found', async (t) => {
  const get = await app(t);
  for (const url of [
    '/docs/configuration.md',
    '/docs/..%2Fpackage.json',
    '/docs/%2e%2e%2fpackage.json',
    '/docs/README.md',
    '/docs/openapi.json',
  ]) {
    const response = await get(url);
    assert.equal(response.statusCode, 404, url);
    assert.equal(response.json().code, 'NOT_FOUND', url);
  }
});

test('DOCS_ENABLED=false turns off /docs, its assets and documents; /openapi.json stays', async (t) => {
  const get = await app(t, { DOCS_ENABLED: 'false' });
  for (const url of [
    '/docs',
    '/docs/',
    '/docs/json',
    '/docs/static/swagger-ui.css',
    '/docs/static/swagger-initializer.js',
    '/docs/websocket.md',
  ]) {
    assert.equal((await get(url)).statusCode, 404, url);
  }
  const document = await get('/openapi.json');
  assert.equal(document.statusCode, 200);
  assert.equal(document.json().info.version, packageVersion);
});
