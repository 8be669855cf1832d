import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Config } from './config.ts';
import type { ResolvedConfig } from './context.ts';

export const DEV_SECRET_FILE = 'jwt-secret.dev';

/**
 * The token secret. Production must set JWT_SECRET (config.ts refuses to
 * start without it). In development the service makes one random secret and
 * keeps it beside the database file, so tokens survive restarts.
 */
export function resolveJwtSecret(config: Config): ResolvedConfig {
  if (config.auth.jwtSecret !== undefined) return config as ResolvedConfig;
  if (config.env === 'production') throw new Error('JWT_SECRET is required in production');
  const dir = config.database.kind === 'sqlite' && config.database.path !== ':memory:' ? dirname(config.database.path) : resolve('data');
  const file = join(dir, DEV_SECRET_FILE);
  let secret: string;
  try {
    secret = readFileSync(file, 'utf8').trim();
  } catch {
    mkdirSync(dir, { recursive: true });
    secret = randomBytes(48).toString('base64url');
    try {
      writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
    } catch {
      // Another process created it first: use theirs.
      secret = readFileSync(file, 'utf8').trim();
    }
  }
  return { ...config, auth: { ...config.auth, jwtSecret: secret } };
}
