/**
 * Generates the documents that are derived from code, so they never drift:
 *   docs/openapi.json   from the route schemas (what the server validates with)
 *   docs/asyncapi.json  from the WebSocket message schemas
 *   docs/errors.md      from the error catalogue
 *   docs/configuration.md from the environment schema
 * `--check` compares instead of writing and fails when a document is stale (CI).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildApp } from '../src/app.ts';
import { EnvSchema, loadConfig } from '../src/config.ts';
import { createContext, type ResolvedConfig } from '../src/context.ts';
import { ERROR_CATALOG } from '../src/errors.ts';
import { API_VERSION } from '../src/http/openapi.ts';
import { ClientMessages, CloseCodes, ServerMessages } from '../src/realtime/protocol.ts';

const docs = (name: string) => fileURLToPath(new URL(`../docs/${name}`, import.meta.url));

async function openApi(): Promise<string> {
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', DATABASE_URL: ':memory:' }) as ResolvedConfig;
  config.auth.jwtSecret = randomBytes(32).toString('base64url');
  const ctx = await createContext(config);
  const app = await buildApp(ctx);
  await app.ready();
  const document = app.swagger();
  await app.close();
  await ctx.close();
  return `${JSON.stringify(document, null, 2)}\n`;
}

function asyncApi(): string {
  const messages = (set: Record<string, object>) =>
    Object.fromEntries(Object.entries(set).map(([type, schema]) => [type.replace('.', '_'), { name: type, payload: schema }]));
  const clientMessages = messages(ClientMessages);
  const serverMessages = messages(ServerMessages);
  const refs = (set: Record<string, unknown>) => Object.keys(set).map((key) => ({ $ref: `#/channels/socket/messages/${key}` }));
  const document = {
    asyncapi: '3.0.0',
    info: {
      title: 'Navi real-time protocol',
      version: API_VERSION,
      description: 'JSON messages over the WebSocket at /v1/ws. See docs/websocket.md for the flow, close codes and limits.',
    },
    channels: { socket: { address: '/v1/ws', messages: { ...clientMessages, ...serverMessages } } },
    operations: {
      clientSends: {
        action: 'receive',
        channel: { $ref: '#/channels/socket' },
        summary: 'Messages the app sends',
        messages: refs(clientMessages),
      },
      serverSends: {
        action: 'send',
        channel: { $ref: '#/channels/socket' },
        summary: 'Messages the server sends',
        messages: refs(serverMessages),
      },
    },
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}

function errorsMarkdown(): string {
  const rows = Object.entries(ERROR_CATALOG).map(([code, entry]) => `| \`${code}\` | ${entry.status} | ${entry.title} | ${entry.doc} |`);
  const closeRows = Object.values(CloseCodes).map((close) => `| ${close.code} | ${close.reason} |`);
  return [
    '# Error codes',
    '',
    '<!-- Generated from src/errors.ts and src/realtime/protocol.ts by `npm run docs`; do not edit by hand. -->',
    '',
    'Every error the HTTP API returns is an [RFC 9457](https://www.rfc-editor.org/rfc/rfc9457) problem document,',
    'sent as `application/problem+json`:',
    '',
    '```json',
    '{',
    '  "type": "urn:navi:error:NOT_PAIRED",',
    '  "title": "Not paired",',
    '  "status": 403,',
    '  "detail": "You can only send taps to a partner",',
    '  "code": "NOT_PAIRED",',
    '  "requestId": "5f0c6a3e-8f0e-4c1e-9a43-2b7f0d1c9e11"',
    '}',
    '```',
    '',
    '`code` is stable: branch on it, never on `title` or `detail` (which are for people). `requestId` is also in the',
    '`X-Request-Id` response header; quote it when reporting a problem. `INVALID_INPUT` problems add `errors`, one',
    '`{ "field", "message" }` per offending field. The WebSocket answers a refused message with an `error` message',
    'carrying the same codes (see [websocket.md](websocket.md)).',
    '',
    '| Code | Status | Title | When, and what the app should do |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
    '## WebSocket close codes',
    '',
    '| Code | Reason |',
    '| --- | --- |',
    ...closeRows,
    '',
    'What each means for the app is in [websocket.md](websocket.md#close-codes).',
    '',
  ].join('\n');
}

function configurationMarkdown(): string {
  const rows = Object.entries(EnvSchema.properties).map(([name, schema]) => {
    const s = schema as { default?: unknown; description?: string; enum?: string[]; minimum?: number; maximum?: number };
    const allowed = s.enum
      ? `One of: ${s.enum.map((v) => `\`${v}\``).join(', ')}.`
      : s.minimum !== undefined
        ? `From ${s.minimum} to ${s.maximum}.`
        : '';
    const meaning = [s.description ? `${s.description}.` : '', allowed].filter(Boolean).join(' ');
    const fallback = s.default === undefined ? '' : `\`${String(s.default)}\``;
    return `| \`${name}\` | ${fallback} | ${meaning} |`;
  });
  return [
    '# Configuration',
    '',
    '<!-- Generated from src/config.ts by `npm run docs`; do not edit by hand. -->',
    '',
    'Everything is read from the environment once, at start, and validated: a bad value stops the start with a',
    'message naming the variable. Durations are in the unit their name says.',
    '',
    '| Variable | Default | Meaning |',
    '| --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}

const check = process.argv.includes('--check');
const outputs: Array<[string, string]> = [
  ['openapi.json', await openApi()],
  ['asyncapi.json', asyncApi()],
  ['errors.md', errorsMarkdown()],
  ['configuration.md', configurationMarkdown()],
];
let stale = 0;
for (const [name, content] of outputs) {
  if (!check) {
    writeFileSync(docs(name), content);
    continue;
  }
  let current = '';
  try {
    current = readFileSync(docs(name), 'utf8');
  } catch {
    // missing counts as stale
  }
  if (current !== content) {
    process.stderr.write(`docs/${name} is out of date: run \`npm run docs\` and commit the result\n`);
    stale++;
  }
}
if (stale > 0) process.exit(1);
