import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Read at scrape time: set by the context once the database and the health checks exist. */
interface ScrapeSources {
  databaseSizeBytes?: () => Promise<number>;
  healthChecks?: () => Promise<Record<string, { status: string; latencyMs: number }>>;
}

/** Every metric the service exports, named in one place (ops/ alerts and dashboards use these names). */
export function createMetrics() {
  const registry = new Registry();
  // Includes the event-loop delay (nodejs_eventloop_lag_*), heap, RSS and open file descriptors.
  collectDefaultMetrics({ register: registry });
  const r = { registers: [registry] };
  const sources: ScrapeSources = {};
  let healthScrape: ReturnType<NonNullable<ScrapeSources['healthChecks']>> | undefined;
  /** Both health gauges are collected from one run of the checks per scrape. */
  const checksForScrape = () => {
    healthScrape ??= (sources.healthChecks?.() ?? Promise.resolve({})).finally(() => setImmediate(() => (healthScrape = undefined)));
    return healthScrape;
  };
  return {
    registry,
    /** The context plugs the scrape-time readings in (see ScrapeSources). */
    sources,
    // --- operations (health, database, load shedding, socket attempts)
    healthCheckUp: new Gauge({
      ...r,
      name: 'navi_health_check_up',
      help: 'Each configured health check at scrape time: 1 ok or degraded, 0 failing',
      labelNames: ['check'] as const,
      async collect() {
        this.reset();
        for (const [check, result] of Object.entries(await checksForScrape())) this.set({ check }, result.status === 'failing' ? 0 : 1);
      },
    }),
    healthCheckDuration: new Gauge({
      ...r,
      name: 'navi_health_check_duration_seconds',
      help: 'How long each health check took at scrape time (the database check is a round trip)',
      labelNames: ['check'] as const,
      async collect() {
        this.reset();
        for (const [check, result] of Object.entries(await checksForScrape())) this.set({ check }, result.latencyMs / 1000);
      },
    }),
    databaseSize: new Gauge({
      ...r,
      name: 'navi_db_size_bytes',
      help: 'Size of the database (SQLite: file plus WAL; PostgreSQL: pg_database_size)',
      async collect() {
        if (sources.databaseSizeBytes) this.set(await sources.databaseSizeBytes().catch(() => Number.NaN));
      },
    }),
    dbQueryDuration: new Histogram({
      ...r,
      name: 'navi_db_query_duration_seconds',
      help: 'Database round trips by kind: select, insert, update, delete, other, and procedure (a whole transaction of the hot path)',
      labelNames: ['kind'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    }),
    loadShed: new Counter({
      ...r,
      name: 'navi_load_shed_total',
      help: 'Requests answered 503 by load shedding, by reason (event_loop_delay, heap)',
      labelNames: ['reason'] as const,
    }),
    wsConnectionAttempts: new Counter({
      ...r,
      name: 'navi_ws_connection_attempts_total',
      help: 'WebSocket upgrade requests received (navi_ws_connections_opened_total counts those that reached hello)',
    }),
    wsConnectionsOpened: new Counter({
      ...r,
      name: 'navi_ws_connections_opened_total',
      help: 'WebSocket connections authenticated and opened (hello sent)',
    }),
    // --- delivery
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
    busMessages: new Counter({
      ...r,
      name: 'navi_bus_messages_total',
      help: 'Events through the cross-instance bus (Redis pub/sub): out published, in received from other instances',
      labelNames: ['direction'] as const,
    }),
    busPublishFailures: new Counter({
      ...r,
      name: 'navi_bus_publish_failures_total',
      help: 'Events the cross-instance bus could not publish (Redis unreachable); the delivery log repairs them',
    }),
    logRepairs: new Counter({
      ...r,
      name: 'navi_log_repairs_total',
      help: 'Log entries a connection read from the database because live delivery did not bring them (lost or late on the bus)',
    }),
    presenceFallbacks: new Counter({
      ...r,
      name: 'navi_presence_fallbacks_total',
      help: 'Presence operations answered by this instance alone because Redis was unavailable',
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
