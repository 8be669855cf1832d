import { pino, type Logger, type LoggerOptions } from 'pino';
import type { Config } from './config.ts';

export type { Logger };

/**
 * Paths that may carry credentials. Tokens and push tokens never reach a log line.
 */
const REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'token',
  'accessToken',
  'refreshToken',
  'pushToken',
  '*.token',
  '*.accessToken',
  '*.refreshToken',
  '*.pushToken',
];

export function loggerOptions(config: Pick<Config, 'logLevel'>): LoggerOptions {
  return {
    level: config.logLevel,
    redact: { paths: REDACT, censor: '[redacted]' },
    base: { service: 'navi' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
}

export function createLogger(config: Pick<Config, 'logLevel'>, destination?: pino.DestinationStream): Logger {
  return destination ? pino(loggerOptions(config), destination) : pino(loggerOptions(config));
}

/** The named loggers of the service's subsystems, declared in one place. */
export const LOGGER_NAMES = ['db', 'auth', 'pairing', 'taps', 'realtime', 'push', 'jobs', 'server', 'limits'] as const;
export type LoggerName = (typeof LOGGER_NAMES)[number];

export const childLogger = (root: Logger, name: LoggerName): Logger => root.child({ module: name });
