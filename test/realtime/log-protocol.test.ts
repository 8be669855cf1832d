import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, test } from 'node:test';
import fc from 'fast-check';
import { startTestApp, type TestApp } from '../support/app.ts';
import { ChaoticBus } from '../support/chaotic-bus.ts';
import { addDevice, asUser, pair, sendTap, signUp, type User } from '../support/clients.ts';
import { LogDevice } from '../support/log-device.ts';

/**
 * A model-based test of the delivery log's contract against a real server
 * with real sockets (fast-check commands): two partners, three devices that
 * follow the reconnect recipe of docs/websocket.md to the letter, and random
 * interleavings of taps from both sides (over HTTP and over sockets), acks,
 * unpairing and pairing again, abrupt drops at any moment (mid-replay
 * included: replays come three entries per database read), and reconnects
 * with the newest stored cursor.
 *
 * The model predicts each user's log exactly (commands run one at a time,
 * and each is answered only after its commit). Invariants: within a
 * connection no entry twice, none out of order, no holes; in the end every
 * device holds its user's whole log, receipts and pairing changes included.
 */

type Who = 'alex' | 'sam';
const other = (who: Who): Who => (who === 'alex' ? 'sam' : 'alex');

interface Model {
  logs: Record<Who, string[]>;
  taps: Array<{ id: string; to: Who; delivered: boolean; seen: boolean }>;
  pairingId: string | undefined;
}

interface Real {
  t: TestApp;
  users: Record<Who, User>;
  devices: LogDevice[];
}

const ownerOf = (real: Real, device: LogDevice): Who => (device.user.userId === real.users.alex.userId ? 'alex' : 'sam');

class SendTap implements fc.AsyncCommand<Model, Real> {
  readonly device: number;
  readonly overSocket: boolean;
  constructor(device: number, overSocket: boolean) {
    this.device = device;
    this.overSocket = overSocket;
  }
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const device = real.devices[this.device]!;
    const from = ownerOf(real, device);
    const to = other(from);
    const body = { id: randomUUID(), to: real.users[to].userId, intensity: 'medium', pattern: 'double' };
    let stored: boolean | undefined;
    if (this.overSocket && device.connected) {
      const ws = device.ws!;
      ws.send({ type: 'tap.send', ...body, ref: body.id });
      // The connection may be cut before the answer (a drop scheduled after N frames): then ask again over HTTP.
      const reply = await Promise.race([
        ws.next('tap.sent', (f) => f.ref === body.id, 5000),
        ws.next('error', (f) => f.ref === body.id, 5000),
        ws.closed.then(() => undefined),
      ]);
      if (reply) {
        stored = reply.type === 'tap.sent';
        if (!stored) assert.equal(reply.code, 'NOT_PAIRED');
      }
    }
    if (stored === undefined) {
      // Resending the same id is safe: 201 or 200 both mean it is stored, once.
      const response = await asUser(real.t, device.user).request('POST', '/v1/taps', body);
      stored = response.statusCode === 201 || response.statusCode === 200;
      if (!stored) assert.equal(response.json().code, 'NOT_PAIRED');
    }
    assert.equal(stored, model.pairingId !== undefined, 'a tap is stored exactly when the two are paired');
    if (!stored) return;
    model.taps.push({ id: body.id, to, delivered: false, seen: false });
    model.logs[from].push(`tap:${body.id}`);
    model.logs[to].push(`tap:${body.id}`);
  }
  toString = () => `send from device ${this.device}${this.overSocket ? ' over its socket' : ''}`;
}

class Ack implements fc.AsyncCommand<Model, Real> {
  readonly device: number;
  readonly pick: number;
  readonly status: 'delivered' | 'seen';
  constructor(device: number, pick: number, status: 'delivered' | 'seen') {
    this.device = device;
    this.pick = pick;
    this.status = status;
  }
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const device = real.devices[this.device]!;
    const mine = model.taps.filter((tap) => tap.to === ownerOf(real, device));
    if (mine.length === 0) return;
    const tap = mine[this.pick % mine.length]!;
    let recorded = false;
    if (device.connected) {
      const ws = device.ws!;
      const ref = randomUUID();
      ws.send({ type: 'ack', tapId: tap.id, status: this.status, ref });
      recorded = (await Promise.race([ws.next('ack.ok', (f) => f.ref === ref, 5000), ws.closed.then(() => undefined)])) !== undefined;
    }
    if (!recorded) {
      // Acks are idempotent: repeating one whose answer was lost with its connection is harmless.
      const response = await asUser(real.t, device.user).request('POST', `/v1/taps/${tap.id}/ack`, { status: this.status });
      assert.equal(response.statusCode, 204);
    }
    const advances = this.status === 'seen' ? !tap.seen : !tap.delivered;
    tap.delivered = true;
    if (this.status === 'seen') tap.seen = true;
    if (advances) model.logs[other(tap.to)].push(`status:${tap.id}:${this.status}`);
  }
  toString = () => `ack ${this.status} from device ${this.device} (tap #${this.pick})`;
}

class Drop implements fc.AsyncCommand<Model, Real> {
  readonly device: number;
  constructor(device: number) {
    this.device = device;
  }
  check = () => true;
  async run(_model: Model, real: Real): Promise<void> {
    real.devices[this.device]!.drop();
  }
  toString = () => `drop device ${this.device}`;
}

class Connect implements fc.AsyncCommand<Model, Real> {
  readonly device: number;
  readonly dropAfter: number | undefined;
  constructor(device: number, dropAfter: number | undefined) {
    this.device = device;
    this.dropAfter = dropAfter;
  }
  check = () => true;
  async run(_model: Model, real: Real): Promise<void> {
    const device = real.devices[this.device]!;
    device.drop();
    await device.connect(real.t.wsUrl, { dropAfter: this.dropAfter });
  }
  toString = () => `connect device ${this.device}${this.dropAfter === undefined ? '' : `, cut after ${this.dropAfter} frames`}`;
}

class TogglePairing implements fc.AsyncCommand<Model, Real> {
  readonly by: Who;
  constructor(by: Who) {
    this.by = by;
  }
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const me = real.users[this.by];
    if (model.pairingId !== undefined) {
      const response = await me.request('DELETE', `/v1/pairings/${model.pairingId}`);
      assert.equal(response.statusCode, 204);
      for (const who of ['alex', 'sam'] as const) model.logs[who].push(`unpaired:${model.pairingId}:unpaired`);
      model.pairingId = undefined;
    } else {
      model.pairingId = await pair(me, real.users[other(this.by)]);
      for (const who of ['alex', 'sam'] as const) model.logs[who].push(`paired:${model.pairingId}`);
    }
  }
  toString = () => `${this.by} toggles the pairing`;
}

class Pause implements fc.AsyncCommand<Model, Real> {
  readonly ms: number;
  constructor(ms: number) {
    this.ms = ms;
  }
  check = () => true;
  async run(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, this.ms));
  }
  toString = () => `pause ${this.ms} ms`;
}

const DEVICES = 3;
const device = fc.integer({ min: 0, max: DEVICES - 1 });
const commands = [
  fc.tuple(device, fc.boolean()).map(([d, s]) => new SendTap(d, s)),
  fc.tuple(device, fc.boolean()).map(([d, s]) => new SendTap(d, s)),
  fc.tuple(device, fc.nat(), fc.constantFrom('delivered' as const, 'seen' as const)).map(([d, p, s]) => new Ack(d, p, s)),
  device.map((d) => new Drop(d)),
  fc.tuple(device, fc.option(fc.integer({ min: 1, max: 12 }), { nil: undefined })).map(([d, n]) => new Connect(d, n)),
  fc.tuple(device, fc.integer({ min: 1, max: 6 })).map(([d, n]) => new Connect(d, n)),
  fc.constantFrom('alex' as const, 'sam' as const).map((who) => new TogglePairing(who)),
  fc.integer({ min: 0, max: 15 }).map((ms) => new Pause(ms)),
];

describe('the delivery log, model-based, against a real server', () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  /** Runs the commands against a fresh server; `bus` replaces the in-process one. */
  const property = (options: { bus?: () => ChaoticBus } = {}) =>
    fc.asyncProperty(fc.commands(commands, { maxCommands: 40 }), async (run) => {
      t = await startTestApp({
        listen: true,
        env: { RATE_LIMIT_TAPS_PER_MINUTE: '100000', WS_REPLAY_PAGE_SIZE: '3', WS_GAP_REPAIR_MS: '20' },
        // The check that repairs a lost last entry, often enough for a test.
        configure: (config) => (config.realtime.logCheckMs = 100),
        ...(options.bus ? { bus: options.bus() } : {}),
      });
      try {
        const alex = await signUp(t);
        const alexWatch = await addDevice(t, alex, 'watchos');
        const sam = await signUp(t);
        const pairingId = await pair(alex, sam);
        const model: Model = { logs: { alex: [`paired:${pairingId}`], sam: [`paired:${pairingId}`] }, taps: [], pairingId };
        const devices = [new LogDevice('alex phone', alex), new LogDevice('alex watch', alexWatch), new LogDevice('sam phone', sam)];
        const real: Real = { t, users: { alex, sam }, devices };
        for (const d of devices) await d.connect(t.wsUrl);
        await fc.asyncModelRun(() => ({ model, real }), run);
        // Live, without reconnecting: every connected device catches up on its own.
        for (const d of devices) if (d.connected) await d.reaches(model.logs[ownerOf(real, d)].length, run.toString());
        for (const d of devices) {
          await d.catchUp(t.wsUrl);
          d.assertSees(model.logs[ownerOf(real, d)], run.toString());
          d.drop();
        }
      } finally {
        await t.close();
        t = undefined;
      }
    });

  test('random sends, acks, drops mid-replay, reconnects and pairing changes: every device gets its whole log, each entry once, in order', async () => {
    await fc.assert(property(), { numRuns: 12 });
  });

  test('the same when live entries are lost or reordered on the way: holes are repaired from the database', async () => {
    await fc.assert(property({ bus: () => new ChaoticBus({ loss: 0.2, maxDelayMs: 30 }) }), { numRuns: 12 });
  });

  test('catch-up works across a server restart: the log is the database', async () => {
    t = await startTestApp({ listen: true });
    const alex = await signUp(t);
    const sam = await signUp(t);
    await pair(alex, sam);
    const device = new LogDevice('sam phone', sam);
    await device.connect(t.wsUrl);
    const before: string[] = [];
    for (let i = 0; i < 20; i++) before.push(`tap:${(await sendTap(alex, sam)).id}`);
    await device.catchUp(t.wsUrl);
    device.drop();

    const { database, config } = t;
    await t.close({ keepDatabase: true });
    t = await startTestApp({ listen: true, database, jwtSecret: config.auth.jwtSecret });
    const missedWhileDown: string[] = [];
    for (let i = 0; i < 15; i++) missedWhileDown.push(`tap:${(await sendTap(asUser(t, alex), sam)).id}`);
    await device.connect(t.wsUrl);
    device.assertSees([device.entries.get(1)!, ...before, ...missedWhileDown], 'after the restart');
  });
});
