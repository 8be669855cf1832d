import type { FastifyRequest } from 'fastify';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';

export type ErrorReporter = (error: unknown, request: FastifyRequest) => void;

/** How long a report may take to leave at shutdown. */
const FLUSH_TIMEOUT_MS = 2000;

/**
 * Error reporting to Sentry, only when SENTRY_DSN is set. It uses
 * @sentry/core, the SDK's runtime-neutral base (two small JavaScript packages,
 * no binaries, no install scripts) rather than @sentry/node, whose
 * OpenTelemetry instrumentation, CLI and native parser binaries (41 packages)
 * this service does not use. It is imported only when enabled, so it costs
 * nothing at run time otherwise. Reports are sent with fetch.
 */
export async function createErrorReporter(
  config: Pick<Config, 'sentryDsn' | 'env'>,
  logger: Logger,
): Promise<{ report: ErrorReporter; close(): Promise<void> } | undefined> {
  if (!config.sentryDsn) return undefined;
  const { createStackParser, createTransport, setCurrentClient } = await import('@sentry/core');
  const { ServerRuntimeClient, nodeStackLineParser } = await import('@sentry/core/server');
  const client = new ServerRuntimeClient({
    dsn: config.sentryDsn,
    environment: config.env,
    platform: 'node',
    runtime: { name: 'node', version: process.version },
    integrations: [],
    stackParser: createStackParser(nodeStackLineParser()),
    transport: (options) =>
      createTransport(options, async (request) => {
        const response = await fetch(options.url, {
          method: 'POST',
          body: request.body as string | Uint8Array<ArrayBuffer>,
          signal: AbortSignal.timeout(5000),
        });
        return {
          statusCode: response.status,
          headers: {
            'retry-after': response.headers.get('retry-after'),
            'x-sentry-rate-limits': response.headers.get('x-sentry-rate-limits'),
          },
        };
      }),
  });
  setCurrentClient(client);
  client.init();
  logger.info('error reporting to Sentry is on');
  return {
    report: (error, request) => {
      client.captureException(error, {
        captureContext: { tags: { requestId: request.id, route: request.routeOptions.url ?? 'unmatched' } },
      });
    },
    async close() {
      await client.close(FLUSH_TIMEOUT_MS);
    },
  };
}
