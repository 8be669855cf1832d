import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import type { TestApp } from './app.ts';

export interface Session {
  userId: string;
  deviceId: string;
  accessToken: string;
  refreshToken: string;
  accessTokenExpiresAt: string;
}

/** A signed-up device, speaking to the app through inject. */
export interface User extends Session {
  request(method: InjectOptions['method'], url: string, body?: unknown, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
}

export function asUser(t: TestApp, session: Session): User {
  return {
    ...session,
    request: (method, url, body, headers = {}) =>
      t.app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${session.accessToken}`, ...headers },
        ...(body === undefined ? {} : { payload: body as InjectOptions['payload'] }),
      }),
  };
}

/** Registers a new user with its first device. */
export async function signUp(
  t: TestApp,
  options: { platform?: 'ios' | 'watchos' | 'web'; name?: string; displayName?: string } = {},
): Promise<User> {
  const response = await t.app.inject({
    method: 'POST',
    url: '/v1/auth/register',
    payload: { platform: options.platform ?? 'ios', ...(options.name ? { name: options.name } : {}) },
  });
  if (response.statusCode !== 201) throw new Error(`register failed: ${response.statusCode} ${response.body}`);
  const user = asUser(t, response.json<Session>());
  if (options.displayName) {
    const named = await user.request('PATCH', '/v1/me', { displayName: options.displayName });
    if (named.statusCode !== 200) throw new Error(`naming failed: ${named.body}`);
  }
  return user;
}

/** Adds another device (e.g. the watch) to a user. */
export async function addDevice(t: TestApp, user: User, platform: 'ios' | 'watchos' | 'web' = 'watchos'): Promise<User> {
  const response = await user.request('POST', '/v1/devices', { platform });
  if (response.statusCode !== 201) throw new Error(`add device failed: ${response.statusCode} ${response.body}`);
  return asUser(t, response.json<Session>());
}

/** Makes two users partners through a pairing code; returns the pairing id. */
export async function pair(a: User, b: User): Promise<string> {
  const code = await a.request('POST', '/v1/pairing-codes');
  if (code.statusCode !== 201) throw new Error(`code failed: ${code.body}`);
  const redeemed = await b.request('POST', '/v1/pairings', { code: code.json<{ code: string }>().code });
  if (redeemed.statusCode !== 201) throw new Error(`redeem failed: ${redeemed.body}`);
  return redeemed.json<{ pairing: { id: string } }>().pairing.id;
}

export interface TapBody {
  id?: string;
  to: string;
  intensity: 'light' | 'medium' | 'strong';
  pattern: 'single' | 'double' | 'triple' | 'heartbeat' | 'long';
}

export async function sendTap(from: User, to: User, extra: Partial<TapBody> = {}) {
  const response = await from.request('POST', '/v1/taps', { to: to.userId, intensity: 'medium', pattern: 'double', ...extra });
  if (response.statusCode !== 201 && response.statusCode !== 200) throw new Error(`tap failed: ${response.statusCode} ${response.body}`);
  return response.json<{ tap: { id: string; cursor: string; from: string; to: string; status: string } }>().tap;
}

/** Asserts the response is a problem document with this status and code. */
export function problemOf(response: LightMyRequestResponse): {
  status: number;
  code: string;
  detail: string;
  requestId: string;
  title: string;
  type: string;
} {
  return response.json();
}
