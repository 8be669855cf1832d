import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { ERROR_CATALOG } from '../../src/errors.ts';
import { ClientMessages } from '../../src/realtime/protocol.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { addDevice, pair, sendTap, signUp, type User } from '../support/clients.ts';
import * as arb from '../support/properties.ts';
import { enumField, field, validBody, type FieldSpec } from '../support/properties.ts';
import { WsClient, type Frame } from '../support/ws-client.ts';

/**
 * Property-based tests over the WebSocket protocol, on a real listening server
 * with a real client: every malformed or refused frame gets one `error` frame
 * with a catalogued code (echoing a usable `ref`), the connection stays open
 * unless a frame broke the size limit, and a final ping still gets its pong.
 * Each run opens its own connection, so runs do not depend on each other.
 */

const RUNS = 100;
/** The per-connection message rate must not be what a run trips over. */
const ENV = { WS_MESSAGES_PER_SECOND: '10000', WS_MESSAGE_BURST: '100000', RATE_LIMIT_TAPS_PER_MINUTE: '10000000' };
const MAX_FRAME_BYTES = 4096;
const CLIENT_TYPES = Object.keys(ClientMessages);
const KNOWN_FIELDS = [...new Set(Object.values(ClientMessages).flatMap((schema) => Object.keys(schema.properties)))];
/** Replies matched against expectations; live `tap` frames and presence are not replies. */
const REPLIES = new Set(['error', 'pong', 'auth.ok', 'ack.ok', 'tap.sent']);

type Outgoing = { data: string | Buffer; binary: boolean };
type Json = Record<string, unknown>;
interface Reply {
  type: string;
  code?: string;
  ref?: string;
  tapId?: string;
}

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const parse = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};
/** A ref the server can echo: a string of 1 to 64 code points (what the schema counts). */
const usableRef = (value: unknown): string | undefined =>
  isObject(value) && typeof value.ref === 'string' && value.ref !== '' && [...value.ref].length <= 64 ? value.ref : undefined;
const isClientMessageType = (value: unknown) => isObject(value) && typeof value.type === 'string' && CLIENT_TYPES.includes(value.type);
const keyOf = (reply: Reply) => `${reply.type}:${reply.code ?? ''}:${reply.ref ?? ''}:${reply.tapId ?? ''}`;
const repliesIn = (frames: Frame[]) => frames.filter((f) => REPLIES.has(f.type));

function assertErrorFrame(frame: Frame): void {
  assert.equal(frame.type, 'error');
  assert.ok(typeof frame.code === 'string' && Object.hasOwn(ERROR_CATALOG, frame.code), `uncatalogued code: ${JSON.stringify(frame)}`);
  assert.ok(typeof frame.detail === 'string' && frame.detail.length > 0, JSON.stringify(frame));
}

// ---- Generators -------------------------------------------------------------

/** JSON of any shape, the pollution keys included. */
const smallJson = arb.jsonOf(2);
const textFrame = (data: string): Outgoing => ({ data, binary: false });

/** A text frame of exactly `bytes` bytes (an unknown message type). */
const sized = (bytes: number): Outgoing => {
  const shell = JSON.stringify({ type: 'padding', pad: '' });
  return { data: JSON.stringify({ type: 'padding', pad: 'x'.repeat(bytes - shell.length) }), binary: false };
};

/** Anything but a message of a known type with only its own fields: JSON of any shape, text, bytes, oversized frames. */
const anyFrame: fc.Arbitrary<Outgoing> = fc.oneof(
  smallJson.filter((v) => !isClientMessageType(v)).map((v) => textFrame(JSON.stringify(v))),
  fc
    .string({ unit: 'binary', maxLength: 200 })
    .filter((s) => !isClientMessageType(parse(s)))
    .map(textFrame),
  fc.uint8Array({ maxLength: 200 }).map((bytes) => ({ data: Buffer.from(bytes), binary: true })),
  // A known type, any of the protocol's field names, and always one field no message has.
  fc
    .tuple(
      fc.constantFrom(...CLIENT_TYPES),
      fc.dictionary(fc.constantFrom(...KNOWN_FIELDS.filter((f) => f !== 'type')), smallJson, { maxKeys: 4 }),
      fc.oneof(fc.constantFrom(...arb.POLLUTION_KEYS), fc.string({ maxLength: 8 })).filter((k) => !KNOWN_FIELDS.includes(k)),
      smallJson,
      fc.option(fc.string({ unit: 'binary', maxLength: 70 }), { nil: undefined }),
    )
    .map(([type, fields, extra, value, ref]) => {
      const message = JSON.stringify({ type, ...fields, ...(ref === undefined ? {} : { ref }) });
      return textFrame(message.replace(/^\{/, `{${JSON.stringify(extra)}:${JSON.stringify(value) ?? 'null'},`));
    }),
  fc
    .constantFrom(
      '{"type":"ping","__proto__":{"admin":true},"ref":"p1"}',
      '{"type":"ping","constructor":{"prototype":{"admin":true}},"ref":"p2"}',
      '{"__proto__":{"type":"ping"},"ref":"p3"}',
    )
    .map(textFrame),
  fc.integer({ min: MAX_FRAME_BYTES - 2, max: MAX_FRAME_BYTES + 2 }).map(sized),
);

/** Stand for a tap sam sends alex right before the ack that names it, spelt in lower or upper case. */
const FRESH_TAP = 'fresh tap';
const FRESH_TAP_UPPER_CASE = 'FRESH TAP';

interface Draft {
  message: Json;
  valid: boolean;
  /** Usable refs are made unique per run (serial + suffix), so replies can be matched. */
  refIs: 'usable' | 'bad';
  refSuffix: string;
}

describe('WebSocket protocol under arbitrary frames', () => {
  let t: TestApp;
  let alex: User;
  let alexWatch: User;
  let sam: User;
  let tapFromAlex: string;
  /** Taps alex sent with a client-chosen id: what a resend must return. */
  const alexTapIds = new Map<string, string>();
  const idPool: string[] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];

  before(async () => {
    t = await startTestApp({ listen: true, env: ENV });
    assert.equal(t.config.realtime.maxMessageBytes, MAX_FRAME_BYTES);
    alex = await signUp(t);
    alexWatch = await addDevice(t, alex);
    sam = await signUp(t);
    await pair(alex, sam);
    tapFromAlex = (await sendTap(alex, sam)).id;
  });
  after(() => t.close());

  /** Sends the frames; answers the replies the server sent to those before the first oversized one, and how it ended. */
  async function exchange(ws: WsClient, frames: Outgoing[]): Promise<{ closedWith?: number; sent: Outgoing[] }> {
    const sent: Outgoing[] = [];
    for (const frame of frames) {
      ws.socket.send(frame.data, { binary: frame.binary });
      if (Buffer.byteLength(frame.data) > MAX_FRAME_BYTES) return { closedWith: (await ws.closed).code, sent };
      sent.push(frame);
    }
    return { sent };
  }

  async function assertStillServing(ws: WsClient): Promise<void> {
    ws.send({ type: 'ping', ref: 'still-there' });
    await ws.next('pong', (f) => f.ref === 'still-there');
  }

  test('arbitrary frames: one catalogued error each, echoing a usable ref; only an oversized frame closes (1009)', async () => {
    const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();
    await fc.assert(
      fc.asyncProperty(fc.array(anyFrame, { minLength: 1, maxLength: 6 }), async (frames) => {
        const ws = await WsClient.connect(t.wsUrl, alex.accessToken);
        try {
          const { closedWith, sent } = await exchange(ws, frames);
          if (closedWith === undefined) await assertStillServing(ws);
          else assert.equal(closedWith, 1009);
          const replies = repliesIn(ws.frames);
          if (closedWith === undefined) assert.deepEqual(replies.pop(), { type: 'pong', ref: 'still-there' });
          assert.equal(replies.length, sent.length, JSON.stringify(replies));
          replies.forEach((reply, i) => {
            assertErrorFrame(reply);
            assert.equal(reply.code, 'INVALID_INPUT');
            const frame = sent[i]!;
            assert.equal(reply.ref, frame.binary ? undefined : usableRef(parse(frame.data as string)), JSON.stringify(reply));
          });
          assert.equal(({} as Json).admin, undefined);
          assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), prototypeBefore);
        } finally {
          await ws.close();
        }
      }),
      { numRuns: RUNS },
    );
  });

  test('before authentication: arbitrary frames are refused one by one, and the auth message still opens the connection', async () => {
    const messageBeforeAuth = fc.constantFrom(
      { type: 'ping', ref: 'a1' },
      { type: 'tap.send', to: crypto.randomUUID(), intensity: 'light', pattern: 'single', ref: 'a2' },
      { type: 'ack', tapId: crypto.randomUUID(), status: 'seen', ref: 'a3' },
    );
    // Every frame of anyFrame is malformed (INVALID_INPUT); a well-formed message is refused until authenticated.
    const frame = fc.oneof(
      anyFrame.filter((f) => Buffer.byteLength(f.data) <= MAX_FRAME_BYTES).map((f) => ({ ...f, code: 'INVALID_INPUT' })),
      messageBeforeAuth.map((m) => ({ ...textFrame(JSON.stringify(m)), code: 'UNAUTHORIZED' })),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 4 }), async (frames) => {
        const ws = await WsClient.connect(t.wsUrl);
        try {
          for (const f of frames) ws.socket.send(f.data, { binary: f.binary });
          ws.send({ type: 'auth', token: alexWatch.accessToken, ref: 'in' });
          await ws.next('hello');
          await assertStillServing(ws);
          // Refusing an unauthenticated message is asynchronous, so it may overtake a parse error: compare as multisets.
          const errors = ws.of('error');
          errors.forEach(assertErrorFrame);
          const expected = frames.map((f) => `${f.code}:${(f.binary ? undefined : usableRef(parse(f.data as string))) ?? ''}`);
          assert.deepEqual(errors.map((e) => `${e.code}:${e.ref ?? ''}`).sort(), expected.sort());
        } finally {
          await ws.close();
        }
      }),
      { numRuns: RUNS / 2 },
    );
  });

  test('near-valid messages of every type: valid ones get their reply, one broken field gets INVALID_INPUT', async () => {
    let serial = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(draftMessage(), { minLength: 1, maxLength: 4 }), async (drafts) => {
        // Two sends with one id (in any case) in a run race each other; which one creates the tap is not for this property.
        const ids = drafts.filter((d) => d.valid && typeof d.message.id === 'string').map((d) => (d.message.id as string).toLowerCase());
        fc.pre(new Set(ids).size === ids.length);
        const ws = await WsClient.connect(t.wsUrl, alex.accessToken);
        try {
          const expected: Reply[] = [];
          const checks: Array<() => Promise<void>> = [];
          /** The id (lower case) each tap.sent must carry, by ref. */
          const sentIds = new Map<string, string>();
          for (const draft of drafts) {
            const message = { ...draft.message };
            // A unique prefix, then the suffix cut to what the schema allows: 64 code points.
            if (draft.refIs === 'usable') message.ref = [...`m${serial++}-${draft.refSuffix}`].slice(0, 64).join('');
            if (message.tapId === FRESH_TAP) message.tapId = (await sendTap(sam, alex)).id;
            if (message.tapId === FRESH_TAP_UPPER_CASE) message.tapId = (await sendTap(sam, alex)).id.toUpperCase();
            const outcome = await expectedOutcome(message, draft.valid);
            if (outcome.reply) expected.push(outcome.reply);
            if (outcome.check) checks.push(outcome.check);
            if (outcome.sentId) sentIds.set(message.ref as string, outcome.sentId);
            ws.send(message);
          }
          for (const reply of expected.filter((r) => r.ref !== undefined)) await ws.next(reply.type, (f) => f.ref === reply.ref);
          for (const check of checks) await check();
          await assertStillServing(ws);
          const got = repliesIn(ws.frames).map((f) => keyOf(f as unknown as Reply));
          assert.deepEqual(got.sort(), [...expected.map(keyOf), 'pong::still-there:'].sort());
          for (const frame of ws.of('error')) assertErrorFrame(frame);
          for (const done of ws.of('ack.ok')) assert.equal(done.advanced === true || done.advanced === false, true);
          for (const sent of ws.of('tap.sent')) {
            const tap = sent.tap as { id: string; to: string };
            assert.equal(tap.to, sam.userId);
            assert.equal(tap.id, sentIds.get(sent.ref as string) ?? tap.id.toLowerCase());
          }
        } finally {
          await ws.close();
        }
      }),
      { numRuns: RUNS },
    );

    /** The reply a message must get, and for an ack (which has none) a check that it was applied. */
    async function expectedOutcome(
      message: Json,
      valid: boolean,
    ): Promise<{ reply?: Reply; check?: () => Promise<void>; sentId?: string }> {
      const ref = usableRef(message);
      if (!valid) return { reply: { type: 'error', code: 'INVALID_INPUT', ...(ref ? { ref } : {}) } };
      const refused = (code: string, extra: Partial<Reply> = {}) => ({ reply: { type: 'error', code, ref, ...extra } });
      switch (message.type) {
        case 'ping':
          return { reply: { type: 'pong', ref } };
        case 'auth':
          return message.token === alex.accessToken ? { reply: { type: 'auth.ok', ref } } : refused('INVALID_TOKEN');
        case 'ack': {
          // Ids are case-insensitive: the server answers them lower case.
          const tapId = (message.tapId as string).toLowerCase();
          if (tapId === tapFromAlex || !(await isMine(tapId))) return refused('NOT_FOUND', { tapId });
          // An ack with a ref is answered; without one it is only applied.
          return { ...(ref ? { reply: { type: 'ack.ok', ref, tapId } } : {}), check: () => ackApplied(tapId, message.status as string) };
        }
        default: {
          const id = (message.id as string | undefined)?.toLowerCase();
          const to = (message.to as string).toLowerCase();
          const what = `${to}|${message.intensity}|${message.pattern}`;
          const stored = id === undefined ? undefined : alexTapIds.get(id);
          if (to === alex.userId) return refused('NOT_PAIRED');
          if (stored !== undefined)
            return stored === what ? { reply: { type: 'tap.sent', ref }, sentId: id } : refused('IDEMPOTENCY_CONFLICT');
          if (to !== sam.userId) return refused('NOT_PAIRED');
          if (id !== undefined) alexTapIds.set(id, what);
          return { reply: { type: 'tap.sent', ref }, sentId: id };
        }
      }
    }
  });

  /** Whether alex received this tap. */
  async function isMine(tapId: string): Promise<boolean> {
    const response = await alex.request('GET', `/v1/taps/${tapId}`);
    return response.statusCode === 200 && response.json().tap.to === alex.userId;
  }

  /** Waits until alex's device shows the ack (acks have no reply); an error would have left it pending. */
  async function ackApplied(tapId: string, status: string): Promise<void> {
    const rank: Record<string, number> = { pending: 0, delivered: 1, seen: 2 };
    const deadline = Date.now() + 3000;
    for (;;) {
      const detail = (await alex.request('GET', `/v1/taps/${tapId}`)).json<{ deliveries: Array<{ deviceId: string; status: string }> }>();
      const mine = detail.deliveries.find((d) => d.deviceId === alex.deviceId);
      if (mine && rank[mine.status]! >= rank[status]!) return;
      assert.ok(Date.now() < deadline, `ack ${status} of ${tapId} was not applied: ${JSON.stringify(detail.deliveries)}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** A message of a known type, valid or with exactly one thing wrong; refs are filled in per run. */
  function draftMessage(): fc.Arbitrary<Draft> {
    const specs: Record<string, Record<string, FieldSpec>> = {
      ping: {},
      auth: {
        token: field(
          fc.oneof(fc.constant(alex.accessToken), fc.constant(alex.refreshToken), arb.anyText(1, 300)),
          fc.oneof(arb.notString, fc.constant('')),
        ),
        cursor: field(arb.cursor, arb.notCursor, false),
      },
      ack: {
        tapId: field(fc.oneof(fc.constantFrom(FRESH_TAP, FRESH_TAP_UPPER_CASE), arb.inAnyCase(tapFromAlex), arb.anyUuid), arb.notUuid),
        status: enumField(['delivered', 'seen']),
      },
      'tap.send': {
        // A small pool of ids comes back often, in any case: resends (same tap) and conflicts (another tap).
        id: field(fc.oneof(arb.anyUuid, fc.constantFrom(...idPool).chain(arb.inAnyCase)), arb.notUuid, false),
        to: field(
          fc.oneof({ weight: 3, arbitrary: arb.inAnyCase(sam.userId) }, arb.inAnyCase(alex.userId), arb.anyUuid),
          fc.oneof(arb.notUuid, fc.constant('partner')),
        ),
        intensity: enumField(arb.INTENSITIES),
        pattern: enumField(arb.PATTERNS),
      },
    };
    // Too long counts code points: 65 astral characters are 130 UTF-16 units, 64 of them are a usable ref.
    const badRef = fc.oneof(arb.notString, fc.constantFrom('', 'r'.repeat(65), '\u{1F44B}'.repeat(65)));
    return fc.constantFrom(...Object.keys(specs)).chain((type) => {
      const fields = specs[type]!;
      const names = Object.keys(fields);
      const required = names.filter((n) => fields[n]!.required);
      const valid = validBody(fields);
      type Change = { kind: 'none' | 'missing' | 'invalid' | 'extra' | 'bad ref'; field?: string; value?: unknown };
      const changes: Array<fc.Arbitrary<Change>> = [
        fc.constant({ kind: 'none' }),
        fc
          .tuple(
            fc.oneof(fc.constantFrom(...arb.POLLUTION_KEYS), fc.string({ maxLength: 8 })).filter((k) => !KNOWN_FIELDS.includes(k)),
            arb.smallJson,
          )
          .map(([f, value]) => ({ kind: 'extra', field: f, value })),
        badRef.map((value) => ({ kind: 'bad ref', field: 'ref', value })),
      ];
      if (required.length) changes.push(fc.constantFrom(...required).map((f) => ({ kind: 'missing', field: f })));
      if (names.length)
        changes.push(fc.constantFrom(...names).chain((f) => fields[f]!.invalid.map((value) => ({ kind: 'invalid', field: f, value }))));
      return fc
        .tuple(
          valid,
          fc.oneof({ weight: changes.length - 1, arbitrary: changes[0]! }, ...changes.slice(1)),
          fc.oneof(fc.string({ unit: 'binary', maxLength: 20 }), fc.constant('\u{1F44B}'.repeat(64))),
        )
        .map(([body, change, refSuffix]): Draft => {
          const message: Json = { type, ...body };
          if (change.kind === 'missing') delete message[change.field!];
          else if (change.kind !== 'none')
            Object.defineProperty(message, change.field!, { value: change.value, enumerable: true, writable: true, configurable: true });
          return { message, valid: change.kind === 'none', refIs: change.kind === 'bad ref' ? 'bad' : 'usable', refSuffix };
        });
    });
  }

  test("an auth message with another device's valid token closes the connection (4401); garbage tokens are refused", async () => {
    const ws = await WsClient.connect(t.wsUrl, alex.accessToken);
    ws.send({ type: 'auth', token: 'not-a-token', ref: 'garbage' });
    assert.equal((await ws.next('error', (f) => f.ref === 'garbage')).code, 'INVALID_TOKEN');
    await assertStillServing(ws);
    ws.send({ type: 'auth', token: alexWatch.accessToken, ref: 'other' });
    assert.equal((await ws.closed).code, 4401);
  });
});
