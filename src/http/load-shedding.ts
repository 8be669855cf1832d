import underPressure, { type FastifyUnderPressureOptions } from '@fastify/under-pressure';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import type { App } from './app-type.ts';
import { problemBody } from './error-handler.ts';
import { PROBLEM_CONTENT_TYPE } from './schemas.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** under-pressure's per-route handler: one that returns nothing lets the request through. */
    pressureHandler?: () => undefined;
  }
}

/** What a shed request is told: come back in a few seconds (clients retry taps idempotently by id). */
export const LOAD_SHED_RETRY_AFTER_SECONDS = 5;

/**
 * Route config for the endpoints that must answer even when the instance is
 * overloaded: liveness (or the orchestrator would kill a busy process),
 * observability (/health, /metrics: an overload is when they matter most)
 * and readiness, which reports the overload itself as a failing `load`
 * check, so the load balancer steers new traffic elsewhere.
 */
export const exemptFromLoadShedding = { pressureHandler: () => undefined };

/**
 * Load shedding with @fastify/under-pressure: while the event loop lags or
 * the heap is nearly full, new requests (WebSocket upgrades included) get a
 * 503 SERVICE_UNAVAILABLE problem document with Retry-After instead of
 * queueing behind the ones already in progress. The answer is sent here,
 * not thrown: a shed request is expected under overload, not an error to
 * log and report one by one (the `navi_load_shed_total` counter has them).
 */
export async function installLoadShedding(app: App, ctx: AppContext): Promise<void> {
  const { maxEventLoopDelayMs, maxHeapUsedBytes, sampleIntervalMs } = ctx.config.loadShedding;
  if (maxEventLoopDelayMs === 0 && maxHeapUsedBytes === 0) return;
  const shed = (request: FastifyRequest, reply: FastifyReply, type: string) => {
    const reason = type === 'eventLoopDelay' ? 'event_loop_delay' : type === 'heapUsedBytes' ? 'heap' : type;
    ctx.metrics.loadShed.inc({ reason });
    reply.code(503).header('retry-after', String(LOAD_SHED_RETRY_AFTER_SECONDS)).type(PROBLEM_CONTENT_TYPE);
    return problemBody('SERVICE_UNAVAILABLE', 'The service is overloaded; retry in a few seconds', request.id);
  };
  await app.register(underPressure, {
    maxEventLoopDelay: maxEventLoopDelayMs,
    maxHeapUsedBytes,
    sampleInterval: sampleIntervalMs,
    // Typed as returning void, but a value it returns is sent as the body (under-pressure's handlePressure).
    pressureHandler: shed as unknown as FastifyUnderPressureOptions['pressureHandler'],
  });
  ctx.health.add(
    'load',
    () => {
      if (!app.isUnderPressure()) return { status: 'ok' };
      const { eventLoopDelay, heapUsed } = app.memoryUsage();
      return {
        status: 'failing',
        detail: `shedding load: event-loop delay ${Math.round(eventLoopDelay)} ms (limit ${maxEventLoopDelayMs || 'off'}), heap ${Math.round(heapUsed / 2 ** 20)} MiB (limit ${maxHeapUsedBytes ? Math.round(maxHeapUsedBytes / 2 ** 20) : 'off'})`,
      };
    },
    { readiness: true },
  );
}
