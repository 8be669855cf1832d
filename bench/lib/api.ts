import { Agent, request } from 'node:http';
import { BENCH_METRICS_TOKEN } from './processes.ts';
import { mapLimit } from './stats.ts';

/** A signed-up device, as the app holds it after /v1/auth/register. */
export interface Account {
  userId: string;
  deviceId: string;
  accessToken: string;
}

/** Two partners; taps go from `sender` to `recipient`. */
export interface Pair {
  sender: Account;
  recipient: Account;
}

/**
 * Set-up traffic, on keep-alive connections that `closeConnections` ends: a
 * set-up connection left idle would hold one of the server's file
 * descriptors through the socket benchmark.
 */
const agent = new Agent({ keepAlive: true, maxSockets: 32 });

export function closeConnections(): void {
  agent.destroy();
}

/** Set-up goes through the public HTTP API, like the apps, so the database holds what production would. */
export async function call<T>(baseUrl: string, method: string, path: string, options: { token?: string; body?: unknown } = {}): Promise<T> {
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  const headers = {
    ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
    ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }),
  };
  const { status, text } = await exchange(new URL(path, baseUrl), method, headers, body);
  if (status < 200 || status >= 300) throw new Error(`${method} ${path} answered ${status}: ${text.slice(0, 500)}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

function exchange(url: URL, method: string, headers: Record<string, string>, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, method, headers }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.once('error', reject);
      response.once('end', () => resolve({ status: response.statusCode ?? 0, text }));
    });
    req.once('error', reject);
    req.end(body);
  });
}

export async function register(baseUrl: string): Promise<Account> {
  const session = await call<Account>(baseUrl, 'POST', '/v1/auth/register', { body: { platform: 'ios' } });
  return { userId: session.userId, deviceId: session.deviceId, accessToken: session.accessToken };
}

/** The pairing flow of the app: one shows a code, the other types it. */
export async function pairAccounts(baseUrl: string, a: Account, b: Account): Promise<void> {
  const { code } = await call<{ code: string }>(baseUrl, 'POST', '/v1/pairing-codes', { token: a.accessToken });
  await call(baseUrl, 'POST', '/v1/pairings', { token: b.accessToken, body: { code } });
}

/** `count` pairs of fresh users, registered and paired over HTTP. */
export async function createPairs(baseUrl: string, count: number, concurrency = 16): Promise<Pair[]> {
  return mapLimit(Array.from({ length: count }), concurrency, async () => {
    const [sender, recipient] = [await register(baseUrl), await register(baseUrl)];
    await pairAccounts(baseUrl, sender, recipient);
    return { sender, recipient };
  });
}

export async function metricsText(baseUrl: string): Promise<string> {
  const { status, text } = await exchange(new URL('/metrics', baseUrl), 'GET', { authorization: `Bearer ${BENCH_METRICS_TOKEN}` });
  if (status !== 200) throw new Error(`GET /metrics answered ${status}`);
  return text;
}
