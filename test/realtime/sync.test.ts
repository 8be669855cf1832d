import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.ts';
import { asUser, pair, sendTap, signUp, type User } from '../support/clients.ts';
import { WsClient } from '../support/ws-client.ts';

type Tap = { id: string; cursor: string; to: string };

/** Deterministic randomness, so a failure can be replayed from its seed. */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A device that does what docs/websocket.md tells app developers: remember
 * the newest cursor, and (re)connect with it.
 */
class Device {
  readonly received = new Map<string, Tap>();
  cursor = '0';
  /** Cursors in the order each connection delivered them. */
  readonly perConnection: number[][] = [];
  ws: WsClient | undefined;
  readonly user: User;

  constructor(user: User) {
    this.user = user;
  }

  async connect(url: string): Promise<void> {
    const ws = await WsClient.connect(`${url}?cursor=${this.cursor}`, this.user.accessToken);
    const seen: number[] = [];
    this.perConnection.push(seen);
    ws.onFrame((frame) => {
      if (frame.type !== 'tap') return;
      const tap = frame.tap as Tap;
      seen.push(Number(tap.cursor));
      this.received.set(tap.id, tap);
      if (Number(tap.cursor) > Number(this.cursor)) this.cursor = tap.cursor;
    });
    this.ws = ws;
    await ws.next('sync.done', () => true, 5000);
  }

  async settle(): Promise<void> {
    const ws = this.ws!;
    ws.send({ type: 'sync', after: this.cursor, ref: 'final' });
    const done = await ws.nextNew('sync.done', (f) => f.ref === 'final', 5000);
    assert.equal(done.hasMore, false);
  }
}

describe('catch-up after dropped connections', () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  test('connections dropped at random points during a stream of taps: nothing missing, nothing out of order', async () => {
    const seed = Date.now() % 100_000;
    const random = prng(seed);
    t = await startTestApp({ listen: true, env: { RATE_LIMIT_TAPS_PER_MINUTE: '100000' } });
    const alex = await signUp(t);
    const sam = await signUp(t);
    await pair(alex, sam);
    const device = new Device(sam);
    await device.connect(t.wsUrl);

    const sent: Tap[] = [];
    const sender = (async () => {
      for (let i = 0; i < 300; i++) {
        const burst = 1 + Math.floor(random() * 4);
        sent.push(...((await Promise.all(Array.from({ length: burst }, () => sendTap(alex, sam)))) as Tap[]));
        if (random() < 0.3) await new Promise((r) => setTimeout(r, random() * 5));
        if (sent.length >= 300) break;
      }
    })();
    let drops = 0;
    const chaos = (async () => {
      while (sent.length < 300) {
        await new Promise((r) => setTimeout(r, 5 + random() * 40));
        device.ws!.drop();
        drops++;
        await new Promise((r) => setTimeout(r, random() * 20));
        await device.connect(t!.wsUrl);
      }
    })();
    await Promise.all([sender, chaos]);
    await device.settle();

    assert.ok(drops >= 3, `the connection was dropped ${drops} times (seed ${seed})`);
    assert.deepEqual(new Set(device.received.keys()), new Set(sent.map((x) => x.id)), `seed ${seed}`);
    for (const cursors of device.perConnection) {
      assert.deepEqual(
        cursors,
        [...cursors].sort((a, b) => a - b),
        `each connection delivers in cursor order (seed ${seed})`,
      );
    }
  });

  test('catch-up works across a server restart: the log is the database', async () => {
    t = await startTestApp({ listen: true });
    const alex = await signUp(t);
    const sam = await signUp(t);
    await pair(alex, sam);
    const device = new Device(sam);
    await device.connect(t.wsUrl);
    const before: Tap[] = [];
    for (let i = 0; i < 20; i++) before.push((await sendTap(alex, sam)) as Tap);
    await device.settle();
    device.ws!.drop();

    const { database, config } = t;
    await t.close({ keepDatabase: true });
    const missedWhileDown: Tap[] = [];
    t = await startTestApp({ listen: true, database, jwtSecret: config.auth.jwtSecret });
    const alexAgain = asUser(t, alex);
    for (let i = 0; i < 15; i++) missedWhileDown.push((await sendTap(alexAgain, sam)) as Tap);
    await device.connect(t.wsUrl);
    await device.settle();
    assert.deepEqual(new Set(device.received.keys()), new Set([...before, ...missedWhileDown].map((x) => x.id)));
    const replayed = device.perConnection.at(-1)!;
    assert.deepEqual(
      replayed,
      missedWhileDown.map((x) => Number(x.cursor)),
      'exactly the missed taps, in order',
    );
  });
});
