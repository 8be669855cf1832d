import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.ts';
import { pair, sendTap, signUp } from '../support/clients.ts';
import { WsClient, type Frame } from '../support/ws-client.ts';
import { LOG_TYPES } from '../support/log-device.ts';

type Page = { entries: Frame[]; cursor: string; hasMore: boolean };

describe('GET /v1/log: the delivery log for devices without a socket', () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  test('pages through the same entries, with the same cursors, that a socket replays', async () => {
    t = await startTestApp({ listen: true });
    const alex = await signUp(t);
    const sam = await signUp(t);
    await pair(alex, sam);
    for (let i = 0; i < 4; i++) {
      const tap = await sendTap(alex, sam);
      if (i % 2 === 0) await sam.request('POST', `/v1/taps/${tap.id}/ack`, { status: 'seen' });
    }
    const socket = await WsClient.connect(`${t.wsUrl}?cursor=0`, alex.accessToken);
    await socket.next('sync.done');
    const replayed = socket.frames.filter((f) => LOG_TYPES.has(f.type));
    socket.drop();
    // pairing, four taps, two receipts
    assert.equal(replayed.length, 7);

    const pages: Page[] = [];
    let after = '0';
    for (;;) {
      const page = (await alex.request('GET', `/v1/log?after=${after}&limit=3`)).json<Page>();
      pages.push(page);
      after = page.cursor;
      if (!page.hasMore) break;
    }
    assert.deepEqual(
      pages.flatMap((p) => p.entries),
      replayed,
    );
    assert.deepEqual(
      pages.map((p) => [p.entries.length, p.cursor, p.hasMore]),
      [
        [3, '3', true],
        [3, '6', true],
        [1, '7', false],
      ],
    );
    // Nothing after the head: an empty page at the same cursor.
    assert.deepEqual((await alex.request('GET', '/v1/log?after=7')).json(), { entries: [], cursor: '7', hasMore: false });
  });

  test('each caller reads only its own log; bad cursors and limits are INVALID_INPUT', async () => {
    t = await startTestApp();
    const alex = await signUp(t);
    const stranger = await signUp(t);
    const sam = await signUp(t);
    await pair(alex, sam);
    await sendTap(alex, sam);
    assert.deepEqual((await stranger.request('GET', '/v1/log')).json<Page>().entries, []);
    for (const query of ['after=-1', 'after=abc', 'after=1000000000000000', 'limit=0', 'limit=501', 'user=' + alex.userId]) {
      const response = await alex.request('GET', `/v1/log?${query}`);
      assert.equal(response.statusCode, 400, query);
      assert.equal(response.json().code, 'INVALID_INPUT', query);
    }
    assert.equal((await t.app.inject({ method: 'GET', url: '/v1/log' })).statusCode, 401);
  });
});
