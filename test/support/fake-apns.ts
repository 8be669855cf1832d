import { createPublicKey, generateKeyPairSync, randomUUID, verify, type KeyObject } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import {
  constants,
  createSecureServer,
  type Http2SecureServer,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { systemClock, type Clock } from '../../src/clock.ts';
import type { ApnsConfig } from '../../src/config.ts';
import { localhostCertificate } from './tls-cert.ts';

/** An answer with Apple's body `{"reason": ..., "timestamp": ...}` (no body for 200). */
export interface FakeReply {
  status: number;
  reason?: string;
  timestamp?: number;
}

/**
 * What the fake does with one request: answer it, or
 * - 'goaway': send GOAWAY that leaves this stream unprocessed (REFUSED_STREAM), then let the connection drain;
 * - 'hang': never answer;
 * - 'reset': RST_STREAM INTERNAL_ERROR without an answer.
 */
export type FakeBehaviour = FakeReply | 'goaway' | 'hang' | 'reset';
export type FakeHandler = (request: FakeRequest) => FakeBehaviour | undefined | Promise<FakeBehaviour | undefined>;

export interface FakeRequest {
  /** Which connection it came on, counting from 1. */
  connection: number;
  method: string;
  path: string;
  deviceToken: string;
  /** Regular headers (no pseudo-headers), lowercase names. */
  headers: Record<string, string>;
  body: string;
  /** The body parsed as JSON, or undefined if it is not JSON. */
  payload: unknown;
  /** The bearer token decoded (whether or not it verified). */
  jwt?: { raw: string; header: Record<string, unknown>; claims: Record<string, unknown> };
  /** What the fake did; undefined until it acted. Replies carry the apns-id sent back. */
  response?: (FakeReply & { apnsId: string }) | 'goaway' | 'hang' | 'reset';
  /** The RST_STREAM code when the client abandoned the stream before an answer (8 = CANCEL). */
  clientResetCode?: number;
}

export interface FakeApnsOptions {
  keyId: string;
  teamId: string;
  /** The iPhone app's bundle id, a topic this team may push to. */
  bundleId: string;
  /** The watch app's, the other topic (default: bundleId + ".watchkitapp", Apple's convention). */
  watchBundleId?: string;
  /** The public half of the client's .p8 key. */
  publicKey: KeyObject | string;
  /** Judges the age of provider tokens (default: the system clock). Pass the client's clock when it is a ManualClock. */
  clock?: Clock;
}

export interface TestApnsKey {
  keyId: string;
  teamId: string;
  privateKeyPem: string;
  publicKey: KeyObject;
}

/** A fresh EC P-256 key, as Apple issues .p8 keys, with made-up ids. */
export function createTestApnsKey(): TestApnsKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { keyId: 'ABC123DEFG', teamId: 'TEAM123456', privateKeyPem, publicKey };
}

const HOUR_MS = 60 * 60_000;
const TOKEN_UPDATE_INTERVAL_MS = 20 * 60_000;
const PUSH_TYPES = new Set(
  'alert background location voip complication fileprovider mdm liveactivity pushtotalk widgets controls'.split(' '),
);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface ConnectionState {
  number: number;
  lastAnswered: number;
  token?: string;
  tokenSince: number;
}

/**
 * A local APNs: HTTP/2 over TLS on 127.0.0.1, checking what Apple checks
 * (provider token, topic, headers, token and payload) and answering with
 * Apple's status and reason. Requests that pass are answered by, in order:
 * tokens marked unregistered, queued behaviours, the handler, then 200.
 * Connections pass through a relay so `blackhole()` can play a dead network.
 */
export class FakeApns {
  readonly origin: string;
  /** A file holding the server's certificate: the client's `caPath`. */
  readonly caPath: string;
  /** Every request received, in arrival order. */
  readonly requests: FakeRequest[] = [];
  readonly #options: FakeApnsOptions & { publicKey: KeyObject; clock: Clock; watchBundleId: string };
  readonly #server: Http2SecureServer;
  readonly #relay: Server;
  readonly #events = new EventEmitter();
  readonly #sessions = new Map<ServerHttp2Session, ConnectionState>();
  readonly #pipes = new Set<Socket>();
  readonly #unregistered = new Map<string, number>();
  /** The topic (app) each registered token belongs to; tokens not in here are accepted under either topic. */
  readonly #tokenTopics = new Map<string, string>();
  #queue: FakeBehaviour[] = [];
  #handler: FakeHandler | undefined;
  #connections = 0;
  #inFlight = 0;
  #peakInFlight = 0;
  #pings = 0;

  static async start(options: FakeApnsOptions): Promise<FakeApns> {
    const { cert, key } = await localhostCertificate();
    const caPath = join(await mkdtemp(join(tmpdir(), 'fake-apns-')), 'ca.pem');
    await writeFile(caPath, cert);
    const server = createSecureServer({ cert, key, allowHTTP1: false });
    const relay = createServer();
    return new FakeApns(options, server, relay, await listen(server), await listen(relay), caPath);
  }

  /** Use `FakeApns.start`. */
  constructor(options: FakeApnsOptions, server: Http2SecureServer, relay: Server, serverPort: number, relayPort: number, caPath: string) {
    const publicKey = typeof options.publicKey === 'string' ? createPublicKey(options.publicKey) : options.publicKey;
    this.#options = {
      ...options,
      publicKey,
      clock: options.clock ?? systemClock,
      watchBundleId: options.watchBundleId ?? `${options.bundleId}.watchkitapp`,
    };
    this.#server = server;
    this.#relay = relay;
    this.origin = `https://127.0.0.1:${relayPort}`;
    this.caPath = caPath;
    this.#server.on('session', (session) => this.#onSession(session));
    this.#server.on('stream', (stream, headers) => void this.#onStream(stream, headers));
    this.#relay.on('connection', (socket) => this.#pipe(socket, serverPort));
  }

  /** Connections accepted so far. */
  get connections(): number {
    return this.#connections;
  }
  /** Streams open right now. */
  get inFlight(): number {
    return this.#inFlight;
  }
  /** The most streams that were ever open at once. */
  get peakInFlight(): number {
    return this.#peakInFlight;
  }
  /** PING frames received from clients. */
  get pings(): number {
    return this.#pings;
  }

  /** Behaviours for the next valid requests, one each, in order. */
  enqueue(...behaviours: FakeBehaviour[]): void {
    this.#queue.push(...behaviours);
  }

  /** Decides for valid requests once the queue is empty; undefined from it means 200. May be async (to hold a request). */
  respondWith(handler: FakeHandler | undefined): void {
    this.#handler = handler;
  }

  /** From now on this token gets 410 Unregistered with `timestamp` (ms). */
  unregister(deviceToken: string, timestamp = this.#options.clock.now()): void {
    this.#unregistered.set(deviceToken, timestamp);
  }

  /**
   * This token was issued to the app with bundle id `topic`, as a device
   * token belongs to one app: under any other topic APNs answers
   * 400 DeviceTokenNotForTopic.
   */
  registerToken(deviceToken: string, topic: string): void {
    this.#tokenTopics.set(deviceToken, topic);
  }

  /** Every open connection silently stops passing bytes, as if the network died; new connections work. */
  blackhole(): void {
    for (const socket of this.#pipes) {
      socket.unpipe();
      socket.pause();
    }
  }

  /** A client configuration pointing at this fake, trusting it only through `caPath`. */
  clientConfig(overrides: Partial<ApnsConfig> & Pick<ApnsConfig, 'key'>): ApnsConfig {
    const { keyId, teamId, bundleId, watchBundleId } = this.#options;
    return {
      keyId,
      teamId,
      bundleId,
      watchBundleId,
      origin: this.origin,
      caPath: this.caPath,
      concurrency: 10,
      timeoutMs: 5_000,
      ...overrides,
    };
  }

  waitForRequests(count: number, timeoutMs = 5_000): Promise<void> {
    return this.waitFor(() => this.requests.length >= count, `${count} requests`, timeoutMs);
  }

  /**
   * Resolves once `predicate` holds: re-checked whenever the fake sees something
   * happen, and every 10 ms for conditions outside it (a log line, a client state).
   */
  waitFor(predicate: () => boolean, what = 'a condition', timeoutMs = 5_000): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!predicate()) return;
        cleanup();
        resolve();
      };
      const poll = setInterval(check, 10);
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`FakeApns: timed out waiting for ${what}`));
      }, timeoutMs);
      const cleanup = () => {
        clearInterval(poll);
        clearTimeout(timer);
        this.#events.off('change', check);
      };
      this.#events.on('change', check);
    });
  }

  async close(): Promise<void> {
    for (const socket of this.#pipes) socket.destroy();
    for (const session of this.#sessions.keys()) session.destroy();
    await Promise.all([closeServer(this.#relay), closeServer(this.#server)]);
    await rm(dirname(this.caPath), { recursive: true, force: true });
  }

  #pipe(downstream: Socket, backPort: number): void {
    const upstream = connect(backPort, '127.0.0.1');
    const drop = () => {
      downstream.destroy();
      upstream.destroy();
      this.#pipes.delete(downstream);
      this.#pipes.delete(upstream);
    };
    for (const socket of [downstream, upstream]) {
      this.#pipes.add(socket);
      socket.on('error', drop);
      socket.on('close', drop);
    }
    downstream.pipe(upstream).pipe(downstream);
  }

  #onSession(session: ServerHttp2Session): void {
    this.#connections += 1;
    this.#sessions.set(session, { number: this.#connections, lastAnswered: 0, tokenSince: 0 });
    session.on('ping', () => {
      this.#pings += 1;
      this.#changed();
    });
    session.on('error', () => undefined);
    session.on('close', () => this.#sessions.delete(session));
  }

  async #onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
    this.#inFlight += 1;
    this.#peakInFlight = Math.max(this.#peakInFlight, this.#inFlight);
    stream.on('error', () => undefined);
    stream.on('close', () => {
      this.#inFlight -= 1;
      this.#changed();
    });
    const body = await readBody(stream);
    const connection = this.#sessions.get(stream.session as ServerHttp2Session);
    if (body === undefined || !connection) return;
    const request = parseRequest(connection.number, headers, body.text);
    stream.prependListener('close', () => {
      if ((request.response === undefined || request.response === 'hang') && stream.rstCode !== constants.NGHTTP2_NO_ERROR)
        request.clientResetCode = stream.rstCode;
    });
    this.requests.push(request);
    this.#changed();
    const behaviour = this.#validate(request, body.bytes, connection) ??
      this.#unregisteredReply(request) ??
      this.#queue.shift() ??
      (await this.#handler?.(request)) ?? { status: 200 };
    if (stream.closed || stream.destroyed) return;
    this.#perform(stream, request, behaviour, connection);
    this.#changed();
  }

  #perform(stream: ServerHttp2Stream, request: FakeRequest, behaviour: FakeBehaviour, connection: ConnectionState): void {
    if (behaviour === 'hang') {
      request.response = 'hang';
    } else if (behaviour === 'reset') {
      request.response = 'reset';
      stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    } else if (behaviour === 'goaway') {
      request.response = 'goaway';
      // Only streams already answered count as processed: this one must be retried elsewhere.
      stream.session?.goaway(constants.NGHTTP2_NO_ERROR, connection.lastAnswered, Buffer.from(JSON.stringify({ reason: 'Shutdown' })));
      stream.close(constants.NGHTTP2_REFUSED_STREAM);
    } else {
      const apnsId = request.headers['apns-id'] ?? randomUUID();
      request.response = { ...behaviour, apnsId };
      connection.lastAnswered = Math.max(connection.lastAnswered, stream.id ?? 0);
      const responseHeaders = { ':status': behaviour.status, 'apns-id': apnsId, 'apns-unique-id': randomUUID() };
      if (behaviour.status === 200) {
        stream.respond(responseHeaders, { endStream: true });
      } else {
        stream.respond({ ...responseHeaders, 'content-type': 'application/json' });
        const { reason = 'InternalServerError', timestamp } = behaviour;
        stream.end(JSON.stringify(timestamp === undefined ? { reason } : { reason, timestamp }));
      }
    }
  }

  /** What APNs itself would refuse, in roughly the order it checks. */
  #validate(request: FakeRequest, bodyBytes: number, connection: ConnectionState): FakeReply | undefined {
    const reply = (status: number, reason: string): FakeReply => ({ status, reason });
    const h = request.headers;
    if (request.method !== 'POST') return reply(405, 'MethodNotAllowed');
    if (!/^\/3\/device\/[^/]*$/.test(request.path)) return reply(404, 'BadPath');
    if (request.deviceToken === '') return reply(400, 'MissingDeviceToken');
    if (h.authorization === undefined) return reply(403, 'MissingProviderToken');
    const tokenProblem = this.#checkProviderToken(request, connection);
    if (tokenProblem) return tokenProblem;
    if (h['apns-topic'] === undefined) return reply(400, 'MissingTopic');
    if (h['apns-topic'] !== this.#options.bundleId && h['apns-topic'] !== this.#options.watchBundleId) return reply(400, 'TopicDisallowed');
    if (!PUSH_TYPES.has(h['apns-push-type'] ?? '')) return reply(400, 'InvalidPushType');
    if (h['apns-id'] !== undefined && !UUID.test(h['apns-id'])) return reply(400, 'BadMessageId');
    if (h['apns-priority'] !== undefined && !['1', '5', '10'].includes(h['apns-priority'])) return reply(400, 'BadPriority');
    if (h['apns-expiration'] !== undefined && !/^\d+$/.test(h['apns-expiration'])) return reply(400, 'BadExpirationDate');
    if (h['apns-collapse-id'] !== undefined && Buffer.byteLength(h['apns-collapse-id']) > 64) return reply(400, 'BadCollapseId');
    if (!/^[0-9a-f]+$/i.test(request.deviceToken)) return reply(400, 'BadDeviceToken');
    const tokenTopic = this.#tokenTopics.get(request.deviceToken);
    if (tokenTopic !== undefined && tokenTopic !== h['apns-topic']) return reply(400, 'DeviceTokenNotForTopic');
    if (bodyBytes === 0) return reply(400, 'PayloadEmpty');
    if (bodyBytes > 4096) return reply(413, 'PayloadTooLarge');
    return undefined;
  }

  #checkProviderToken(request: FakeRequest, connection: ConnectionState): FakeReply | undefined {
    const invalid: FakeReply = { status: 403, reason: 'InvalidProviderToken' };
    const jwt = request.jwt;
    if (!jwt) return invalid;
    const { keyId, teamId, publicKey, clock } = this.#options;
    if (jwt.header.alg !== 'ES256' || jwt.header.kid !== keyId || jwt.claims.iss !== teamId) return invalid;
    const signingInput = Buffer.from(jwt.raw.slice(0, jwt.raw.lastIndexOf('.')));
    const signature = Buffer.from(jwt.raw.slice(jwt.raw.lastIndexOf('.') + 1), 'base64url');
    if (!verify('sha256', signingInput, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)) return invalid;
    if (typeof jwt.claims.iat !== 'number') return invalid;
    const now = clock.now();
    if (now - jwt.claims.iat * 1000 > HOUR_MS) return { status: 403, reason: 'ExpiredProviderToken' };
    if (connection.token !== jwt.raw) {
      if (connection.token !== undefined && now - connection.tokenSince < TOKEN_UPDATE_INTERVAL_MS) {
        return { status: 429, reason: 'TooManyProviderTokenUpdates' };
      }
      connection.token = jwt.raw;
      connection.tokenSince = now;
    }
    return undefined;
  }

  #unregisteredReply(request: FakeRequest): FakeReply | undefined {
    const timestamp = this.#unregistered.get(request.deviceToken);
    return timestamp === undefined ? undefined : { status: 410, reason: 'Unregistered', timestamp };
  }

  #changed(): void {
    this.#events.emit('change');
  }
}

function parseRequest(connection: number, headers: IncomingHttpHeaders, body: string): FakeRequest {
  const plain: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith(':') && value !== undefined) plain[name] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  const path = String(headers[':path'] ?? '');
  const request: FakeRequest = {
    connection,
    method: String(headers[':method'] ?? ''),
    path,
    deviceToken: decodeURIComponent(/^\/3\/device\/([^/?]*)/.exec(path)?.[1] ?? ''),
    headers: plain,
    body,
    payload: parseJson(body),
  };
  const raw = /^bearer (.+)$/i.exec(plain.authorization ?? '')?.[1];
  const parts = raw?.split('.');
  if (raw !== undefined && parts?.length === 3) {
    const header = parseJson(Buffer.from(parts[0] ?? '', 'base64url').toString('utf8'));
    const claims = parseJson(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8'));
    if (isObject(header) && isObject(claims)) request.jwt = { raw, header, claims };
  }
  return request;
}

function readBody(stream: ServerHttp2Stream): Promise<{ text: string; bytes: number } | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes <= 1_048_576) chunks.push(chunk);
    });
    stream.on('end', () => resolve({ text: Buffer.concat(chunks).toString('utf8'), bytes }));
    // Reset before the body was complete: nothing to answer.
    stream.on('close', () => resolve(undefined));
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

async function listen(server: Server | Http2SecureServer): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function closeServer(server: Server | Http2SecureServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
