import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.ts';
import { pair, signUp, type User } from '../support/clients.ts';
import { WsClient } from '../support/ws-client.ts';

/**
 * Bugs the property tests (property.test.ts) found in the WebSocket protocol,
 * pinned as plain examples of the fixed behaviour.
 */
describe('WebSocket regressions found by the properties', () => {
  let t: TestApp;
  let alex: User;
  let sam: User;
  before(async () => {
    t = await startTestApp({ listen: true });
    alex = await signUp(t);
    sam = await signUp(t);
    await pair(alex, sam);
  });
  after(() => t.close());

  async function connected(work: (ws: WsClient) => Promise<void>): Promise<void> {
    const ws = await WsClient.connect(t.wsUrl, alex.accessToken);
    try {
      await work(ws);
    } finally {
      await ws.close();
    }
  }

  test('a 15-digit cursor connects (a device ahead of the log starts from its head); 16 digits and more are refused with 400 (was: precision lost above 2^53)', async () => {
    const ahead = await WsClient.connect(`${t.wsUrl}?cursor=999999999999999`, alex.accessToken);
    try {
      const hello = await ahead.next('hello');
      assert.deepEqual(await ahead.next('sync.done'), { type: 'sync.done', cursor: hello.cursor });
    } finally {
      await ahead.close();
    }
    for (const cursor of ['1000000000000000', '9007199254740993', '9999999999999999', '99999999999999999']) {
      await assert.rejects(WsClient.connect(`${t.wsUrl}?cursor=${cursor}`, alex.accessToken), /upgrade refused: 400/, cursor);
    }
  });

  test('the first auth message refuses a 16-digit cursor as INVALID_INPUT, then opens with a valid one', async () => {
    const ws = await WsClient.connect(t.wsUrl);
    try {
      ws.send({ type: 'auth', token: alex.accessToken, cursor: '9007199254740993', ref: 'too-long' });
      assert.equal((await ws.next('error', (f) => f.ref === 'too-long')).code, 'INVALID_INPUT');
      ws.send({ type: 'auth', token: alex.accessToken, cursor: '999999999999999', ref: 'ok' });
      const hello = await ws.next('hello');
      assert.equal(hello.ref, 'ok');
      assert.equal((await ws.next('sync.done')).cursor, hello.cursor);
    } finally {
      await ws.close();
    }
  });

  test('tap.send takes ids in upper case and answers them lower case; the same id in either case is the same tap', () =>
    connected(async (ws) => {
      const id = crypto.randomUUID();
      ws.send({
        type: 'tap.send',
        id: id.toUpperCase(),
        to: sam.userId.toUpperCase(),
        intensity: 'light',
        pattern: 'single',
        ref: 'upper',
      });
      const first = await ws.next('tap.sent', (f) => f.ref === 'upper');
      const tap = first.tap as { id: string; from: string; to: string };
      assert.equal(first.created, true);
      assert.deepEqual([tap.id, tap.from, tap.to], [id, alex.userId, sam.userId]);
      ws.send({ type: 'tap.send', id, to: sam.userId, intensity: 'light', pattern: 'single', ref: 'lower' });
      const again = await ws.next('tap.sent', (f) => f.ref === 'lower');
      assert.equal(again.created, false);
      assert.deepEqual(again.tap, first.tap);
    }));

  test('an id with the urn:uuid: prefix is INVALID_INPUT', () =>
    connected(async (ws) => {
      ws.send({ type: 'tap.send', to: `urn:uuid:${sam.userId}`, intensity: 'light', pattern: 'single', ref: 'urn-to' });
      ws.send({ type: 'ack', tapId: `urn:uuid:${crypto.randomUUID()}`, status: 'seen', ref: 'urn-ack' });
      for (const ref of ['urn-to', 'urn-ack']) assert.equal((await ws.next('error', (f) => f.ref === ref)).code, 'INVALID_INPUT');
      assert.equal(ws.of('tap.sent').length, 0);
    }));

  test('an error echoes a ref of up to 64 code points, however many UTF-16 units that is', () =>
    connected(async (ws) => {
      const wave = '\u{1F44B}';
      ws.send({ type: 'no such type', ref: wave.repeat(64) });
      ws.send({ type: 'no such type', ref: wave.repeat(65) });
      ws.send({ type: 'ping', ref: 'after' });
      await ws.next('pong', (f) => f.ref === 'after');
      assert.deepEqual(
        ws.of('error').map((f) => f.ref),
        [wave.repeat(64), undefined],
      );
    }));
});
