import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.ts';
import { addDevice, pair, sendTap, signUp, type User } from '../support/clients.ts';
import { WsClient } from '../support/ws-client.ts';

/**
 * A signed-out device is out, on every path at once (issue: a socket opened
 * right after `POST /v1/auth/logout` with the same access token received
 * taps, replayed history, acked and renewed in-band until the token expired).
 */
describe("a device's sign-out reaches its sockets, whatever the timing", () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  async function couple() {
    t = await startTestApp({ listen: true, env: { RATE_LIMIT_TAPS_PER_MINUTE: '100000' } });
    const alex = await signUp(t);
    const sam = await signUp(t);
    await pair(alex, sam);
    return { alex, sam };
  }

  /** How a socket opened with this device's token ends: refused at the upgrade, or closed with a code. */
  async function outcomeOf(opening: Promise<WsClient>): Promise<string> {
    try {
      const ws = await opening;
      const closed = await Promise.race([ws.closed, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 1500))]);
      if (!closed) {
        ws.drop();
        return `still open after 1.5 s with ${ws.frames.length} frames`;
      }
      return `closed ${closed.code}`;
    } catch (error) {
      return String((error as Error).message);
    }
  }

  test('after logout, the same access token opens no socket: not at the upgrade, not in-band, twenty times over', async () => {
    const { sam } = await couple();
    for (let i = 0; i < 20; i++) {
      const device = await addDevice(t!, sam, 'watchos');
      // A request that warms every cache with this device.
      assert.equal((await device.request('GET', '/v1/me')).statusCode, 200);
      assert.equal((await device.request('POST', '/v1/auth/logout')).statusCode, 204);
      await assert.rejects(WsClient.connect(t!.wsUrl, device.accessToken), /upgrade refused: 401/);
      const browser = await WsClient.connect(t!.wsUrl);
      browser.send({ type: 'auth', token: device.accessToken });
      assert.equal((await browser.closed).code, 4401);
      assert.equal((await device.request('GET', '/v1/me')).statusCode, 401);
    }
  });

  test('a socket opening while its device signs out ends closed (4403) or refused, and never sees a later tap', async () => {
    const { alex, sam } = await couple();
    for (let i = 0; i < 20; i++) {
      const device = await addDevice(t!, sam, 'watchos');
      assert.equal((await device.request('GET', '/v1/me')).statusCode, 200);
      const opening = WsClient.connect(`${t!.wsUrl}?cursor=0`, device.accessToken, { waitForHello: false });
      opening.catch(() => undefined);
      // Requests in flight while the device is removed must not bring it back either.
      const inFlight = Array.from({ length: 5 }, () => device.request('GET', '/v1/me'));
      const [loggedOut] = await Promise.all([device.request('POST', '/v1/auth/logout'), ...inFlight]);
      assert.equal(loggedOut.statusCode, 204);
      const outcome = await outcomeOf(opening);
      assert.match(outcome, /^(closed 4403|upgrade refused: 401)$/, `attempt ${i}: ${outcome}`);
      const tap = await sendTap(alex, sam);
      const ws = await opening.catch(() => undefined);
      assert.ok(!ws?.frames.some((f) => f.type === 'tap' && (f.tap as { id: string }).id === tap.id), 'no tap after sign-out');
      assert.equal((await device.request('GET', '/v1/me')).statusCode, 401, `attempt ${i}: the token is dead after logout`);
    }
  });

  test('a device removed from another device: its open socket closes at once, and renewing in-band is refused', async () => {
    const { sam } = await couple();
    const watch = await addDevice(t!, sam, 'watchos');
    const ws = await WsClient.connect(t!.wsUrl, watch.accessToken);
    const other = await WsClient.connect(t!.wsUrl, sam.accessToken);
    assert.equal((await sam.request('DELETE', `/v1/devices/${watch.deviceId}`)).statusCode, 204);
    assert.equal((await ws.closed).code, 4403);
    // Its token, presented in-band on a socket of its own user, is refused as the device no longer exists.
    other.send({ type: 'auth', token: watch.accessToken, ref: 'renew' });
    const refused = await Promise.race([other.next('error', (f) => f.ref === 'renew'), other.closed.then(() => undefined)]);
    assert.ok(refused === undefined || refused.code === 'INVALID_TOKEN');
    other.drop();
  });

  test('tap.send racing its own device sign-out is answered tap.sent or cut by the close; never INTERNAL_ERROR', async () => {
    const { alex, sam } = await couple();
    for (let i = 0; i < 10; i++) {
      const device: User = await addDevice(t!, sam, 'ios');
      const ws = await WsClient.connect(t!.wsUrl, device.accessToken);
      for (let k = 0; k < 5; k++) ws.send({ type: 'tap.send', to: alex.userId, intensity: 'light', pattern: 'single', ref: `r${k}` });
      await device.request('POST', '/v1/auth/logout');
      await ws.closed;
      assert.deepEqual(
        ws.of('error').map((f) => f.code),
        [],
        `attempt ${i}`,
      );
    }
  });
});
