import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { asUser, pair, sendTap, signUp, type Session, type User } from '../support/clients.ts';
import { writeBacklog } from '../support/backlog.ts';
import { WsClient } from '../support/ws-client.ts';

describe('hostile and broken clients', () => {
  let t: TestApp;
  const sockets: WsClient[] = [];
  const connect = async (user: User) => {
    const ws = await WsClient.connect(t.wsUrl, user.accessToken);
    sockets.push(ws);
    return ws;
  };
  afterEach(async () => {
    for (const ws of sockets.splice(0)) ws.drop();
    await t?.close();
  });

  async function couple(options: Parameters<typeof startTestApp>[0] = {}) {
    t = await startTestApp({ listen: true, ...options });
    const alex = await signUp(t);
    const sam = await signUp(t);
    await pair(alex, sam);
    return { alex, sam };
  }

  test('garbage, unknown types, invalid fields and foreign acks get an error reply; the connection lives on', async () => {
    const { alex, sam } = await couple();
    const ws = await connect(sam);
    const stranger = await signUp(t);
    const strangersTap = await (async () => {
      await pair(stranger, alex);
      return sendTap(stranger, alex);
    })();
    ws.send('{not json');
    ws.send(JSON.stringify([1, 2]));
    ws.send({ type: 'teleport', ref: 'x1' });
    ws.send({ type: 'tap.send', to: alex.userId, intensity: 'loud', pattern: 'single', ref: 'x2' });
    ws.send({ type: 'ack', tapId: strangersTap.id, status: 'seen', ref: 'x3' });
    ws.send({ type: 'ack', tapId: 'yesterday', status: 'seen', ref: 'x4' });
    ws.send({ type: 'ping', ref: 'alive' });
    await ws.next('pong', (f) => f.ref === 'alive');
    await ws.next('error', (f) => f.ref === 'x3');
    const errors = ws.of('error');
    assert.deepEqual(
      new Set(errors.map((e) => `${e.code}:${e.ref ?? ''}`)),
      new Set(['INVALID_INPUT:', 'INVALID_INPUT:x1', 'INVALID_INPUT:x2', 'INVALID_INPUT:x4', 'NOT_FOUND:x3']),
    );
    assert.match(String(errors.find((e) => e.ref === 'x1')!.detail), /Unknown message type/);
    assert.match(String(errors.find((e) => e.ref === 'x2')!.detail), /message\.intensity must be one of/);
    assert.equal(errors.find((e) => e.ref === 'x3')!.tapId, strangersTap.id);
    const tap = await sendTap(alex, sam);
    assert.equal(((await ws.next('tap')).tap as { id: string }).id, tap.id);
  });

  test('a frame over the size limit closes the connection with 1009; others keep working', async () => {
    const { alex, sam } = await couple();
    const [big, other] = [await connect(sam), await connect(alex)];
    big.send({ type: 'ping', ref: 'x'.repeat(5000) });
    assert.equal((await big.closed).code, 1009);
    other.send({ type: 'ping', ref: 'still' });
    await other.next('pong');
  });

  test('a flood beyond the message rate closes the connection with 1008', async () => {
    const { sam } = await couple({ env: { WS_MESSAGES_PER_SECOND: '5', WS_MESSAGE_BURST: '10' }, clock: new ManualClock(Date.now()) });
    const ws = await connect(sam);
    for (let i = 0; i < 20; i++) ws.send({ type: 'ping' });
    assert.equal((await ws.closed).code, 1008);
    assert.ok(ws.of('pong').length <= 10);
  });

  test('a consumer that stops reading is dropped once its backlog passes the cap, and catches up by reconnecting with its cursor', async () => {
    const { alex, sam } = await couple({
      configure: (c) => {
        c.realtime.maxBufferedBytes = 256 * 1024;
        c.realtime.drainTimeoutMs = 500;
      },
    });
    // A backlog bigger than the kernel's socket buffers (about 4 MB here).
    await writeBacklog(t.ctx, alex, sam, 30_000);
    const slow = await WsClient.connect(`${t.wsUrl}?cursor=0`, sam.accessToken);
    sockets.push(slow);
    const other = await connect(alex);
    (slow.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    // The server gives up on the reader while it is still paused...
    while (t.ctx.connections.isDeviceOnline(sam.deviceId)) await new Promise((r) => setTimeout(r, 10));
    // ...and once it reads again, it finds the close code after the backlog.
    (slow.socket as unknown as { _socket: { resume(): void } })._socket.resume();
    assert.equal((await slow.closed).code, 4408);
    other.send({ type: 'ping' });
    await other.next('pong');
    const seen = slow.frames.filter((f) => typeof f.cursor === 'string' && f.type !== 'sync.done' && f.type !== 'hello');
    assert.ok(seen.length < 30_001, 'the slow reader did not get everything before it was dropped');
    const lastSeen = seen.at(-1)!.cursor as string;
    const retry = await WsClient.connect(`${t.wsUrl}?cursor=${lastSeen}`, sam.accessToken);
    sockets.push(retry);
    await retry.next('sync.done', () => true, 20_000);
    const resumed = retry.frames.filter((f) => typeof f.cursor === 'string' && f.type !== 'sync.done' && f.type !== 'hello');
    // The pairing, then 30,000 taps: every position once, across the two connections.
    assert.deepEqual(
      [...seen, ...resumed].map((f) => Number(f.cursor)),
      Array.from({ length: 30_001 }, (_, i) => i + 1),
    );
  });

  test('an access token that expires without in-band renewal closes the socket (4402); renewal keeps it open', async () => {
    const clock = new ManualClock(Date.now());
    const { sam } = await couple({ clock, configure: (c) => (c.realtime.heartbeatMs = 50) });
    const renewing = await connect(sam);
    const lapsing = await connect(
      asUser(
        t,
        (
          await t.app.inject({
            method: 'POST',
            url: '/v1/devices',
            headers: { authorization: `Bearer ${sam.accessToken}` },
            payload: { platform: 'web' },
          })
        ).json<Session>(),
      ),
    );
    clock.advance(10 * 60_000);
    const refreshed = (
      await t.app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refreshToken: sam.refreshToken } })
    ).json<Session>();
    renewing.send({ type: 'auth', token: refreshed.accessToken, ref: 'renew' });
    const ok = await renewing.next('auth.ok');
    assert.equal(ok.tokenExpiresAt, refreshed.accessTokenExpiresAt);
    clock.advance(6 * 60_000);
    assert.equal((await lapsing.closed).code, 4402);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(renewing.socket.readyState, renewing.socket.OPEN);
    // A token of another device is not a renewal.
    renewing.send({ type: 'auth', token: (await signUp(t)).accessToken });
    assert.equal((await renewing.closed).code, 4401);
  });

  test('a peer that stops answering pings is dropped within two heartbeats and its partner sees it go offline', async () => {
    const { alex, sam } = await couple({ configure: (c) => (c.realtime.heartbeatMs = 100) });
    const watcher = await connect(alex);
    const dead = await connect(sam);
    await watcher.next('presence', (f) => f.online === true);
    (dead.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    const started = Date.now();
    await watcher.next('presence', (f) => f.online === false, 2000);
    assert.ok(Date.now() - started < 1000);
  });

  test('a socket that does not authenticate in time is closed with 4401', async () => {
    await couple({ configure: (c) => (c.realtime.authTimeoutMs = 100) });
    const silent = await WsClient.connect(t.wsUrl);
    sockets.push(silent);
    const closed = await silent.closed;
    assert.equal(closed.code, 4401);
    assert.match(closed.reason, /no auth message/);
  });

  test('shutting down closes sockets with 1012 (service restart)', async () => {
    const { sam } = await couple();
    const ws = await connect(sam);
    await t.close();
    const closed = await ws.closed;
    assert.equal(closed.code, 1012);
  });
});
