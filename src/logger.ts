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

/** JSON lines on stdout, or to `destination` (tests); with logFormat 'pretty', lines for people through pino-pretty. */
export function createLogger(
  config: Pick<Config, 'logLevel'> & Partial<Pick<Config, 'logFormat'>>,
  destination?: pino.DestinationStream,
): Logger {
  if (destination) return pino(loggerOptions(config), destination);
  if (config.logFormat === 'pretty') return pino({ ...loggerOptions(config), transport: PRETTY });
  return pino(loggerOptions(config));
}

/**
 * pino-pretty is a development dependency, loaded (in pino's worker thread)
 * only when asked for; config.ts refuses LOG_FORMAT=pretty when it is not
 * installed, so a production install (npm ci --omit=dev) never reaches it.
 */
const PRETTY: pino.TransportSingleOptions = {
  target: 'pino-pretty',
  options: {
    colorize: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,service,module',
    messageFormat: '{if module}{module}: {end}{msg}',
    singleLine: true,
  },
};

/** The named loggers of the service's subsystems, declared in one place. */
export const LOGGER_NAMES = ['db', 'auth', 'pairing', 'taps', 'realtime', 'push', 'jobs', 'server', 'limits', 'shared'] as const;
export type LoggerName = (typeof LOGGER_NAMES)[number];

export const childLogger = (root: Logger, name: LoggerName): Logger => root.child({ module: name });
