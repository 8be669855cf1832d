import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { ClientMessages, CloseCodes, ServerMessages } from '../src/realtime/protocol.ts';

const read = (name: string) => readFileSync(new URL(`../docs/${name}`, import.meta.url), 'utf8');

describe('hand-written documents cover the protocol', () => {
  test('docs/websocket.md documents every message type and close code', () => {
    const doc = read('websocket.md');
    for (const type of [...Object.keys(ClientMessages), ...Object.keys(ServerMessages)]) {
      assert.ok(doc.includes(`\`${type}\``), `websocket.md is missing the ${type} message`);
    }
    for (const { code } of Object.values(CloseCodes)) {
      assert.match(doc, new RegExp(`^\\| ${code} \\|`, 'm'), `websocket.md is missing close code ${code}`);
    }
  });
});
