import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Every metric the service exports, named in one place. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const r = { registers: [registry] };
  return {
    registry,
    httpRequestDuration: new Histogram({
      ...r,
      name: 'navi_http_request_duration_seconds',
      help: 'HTTP request duration by route and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    }),
    tapsCreated: new Counter({ ...r, name: 'navi_taps_created_total', help: 'Taps committed', labelNames: ['via'] as const }),
    tapBatchSize: new Histogram({
      ...r,
      name: 'navi_tap_commit_batch_size',
      help: 'Taps committed together in one transaction (group commit)',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    }),
    deliveriesAcked: new Counter({
      ...r,
      name: 'navi_deliveries_acked_total',
      help: 'Device acknowledgements that moved a delivery forward',
      labelNames: ['status', 'channel'] as const,
    }),
    pushHandoffs: new Counter({
      ...r,
      name: 'navi_push_handoffs_total',
      help: 'Deliveries handed to the push channel, by why (offline device, or no ack within the window)',
      labelNames: ['trigger'] as const,
    }),
    pushAttempts: new Counter({
      ...r,
      name: 'navi_push_attempts_total',
      help: 'Requests to APNs by outcome (accepted, invalid-token, permanent, retry, misconfigured) and APNs reason',
      labelNames: ['outcome', 'reason'] as const,
    }),
    pushResolutions: new Counter({
      ...r,
      name: 'navi_push_resolutions_total',
      help: 'Hand-offs settled without a request: skipped (no or dead token, push off), expired, not_needed (acked first)',
      labelNames: ['state', 'reason'] as const,
    }),
    apnsLatency: new Histogram({
      ...r,
      name: 'navi_apns_request_duration_seconds',
      help: 'APNs request latency',
      labelNames: ['status'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    }),
    pushTokensInvalidated: new Counter({
      ...r,
      name: 'navi_push_tokens_invalidated_total',
      help: 'Device push tokens marked invalid after an APNs answer',
      labelNames: ['reason'] as const,
    }),
    wsConnections: new Gauge({ ...r, name: 'navi_ws_connections', help: 'Authenticated WebSocket connections' }),
    wsMessages: new Counter({
      ...r,
      name: 'navi_ws_messages_total',
      help: 'WebSocket messages by direction and type',
      labelNames: ['direction', 'type'] as const,
    }),
    wsCloses: new Counter({ ...r, name: 'navi_ws_closes_total', help: 'WebSocket closes by code', labelNames: ['code'] as const }),
    rateLimited: new Counter({
      ...r,
      name: 'navi_rate_limited_total',
      help: 'Requests refused by a rate limit',
      labelNames: ['limit'] as const,
    }),
    rateLimitFallbacks: new Counter({
      ...r,
      name: 'navi_rate_limit_fallbacks_total',
      help: 'Rate-limit decisions taken in-process because Redis was unavailable (limits then hold per instance)',
    }),
    pairingGuessesRefused: new Counter({
      ...r,
      name: 'navi_pairing_guesses_refused_total',
      help: 'Pairing redemptions refused because a failed-guess budget was spent, by budget (network, global); a rise is a guessing attack',
      labelNames: ['budget'] as const,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
