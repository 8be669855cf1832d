import type { DatabaseHandle } from './db/database.ts';
import type { Health } from './health.ts';
import type { Logger } from './logger.ts';
import type { PushDispatcher } from './delivery/push-dispatcher.ts';

interface Subsystems {
  logger: Logger;
  database: DatabaseHandle;
  connections: { readonly size: number };
  /** Absent when APNs is not configured: no push check. */
  push?: Pick<PushDispatcher, 'state'>;
}

/** The checks of the subsystems every instance has; an optional one adds its own only when configured. */
export function registerHealthChecks(health: Health, subsystems: Subsystems): void {
  health.add(
    'database',
    async () => {
      try {
        await subsystems.database.ping();
        return { status: 'ok' };
      } catch (error) {
        // The error goes to the log; the public answer names only its code (no addresses, no SQL).
        subsystems.logger.error({ err: error }, 'health check: the database does not answer');
        const code = (error as { code?: string }).code;
        return { status: 'failing', detail: `the database does not answer${code ? ` (${code})` : ''}` };
      }
    },
    { readiness: true },
  );
  health.add('websocket', () => ({ status: 'ok', connections: subsystems.connections.size }), { readiness: false });
  const push = subsystems.push;
  if (push) {
    health.add(
      'push',
      () =>
        push.state() === 'failing'
          ? { status: 'degraded', detail: 'APNs refuses or fails our requests (see the push log)' }
          : { status: 'ok' },
      { readiness: false },
    );
  }
}
