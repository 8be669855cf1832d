/**
 * `node bench/bus-candidates.ts [--rate=4000] [--seconds=5] [--redis=URL] [--postgres=URL]`
 *
 * The candidates for the cross-instance bus (docs/scaling.md#choosing-the-bus),
 * measured the same way: one publisher and one subscriber process-local
 * connection pair, messages of the size of a tap entry (about 400 bytes),
 * sent open-loop at a fixed rate; reported: delivery latency percentiles
 * (publish call to receipt), and the closed-loop ceiling of one publisher
 * connection. Redis pub/sub (PUBLISH/SUBSCRIBE), Redis Streams (XADD and a
 * blocking XREAD) and PostgreSQL LISTEN/NOTIFY (pg_notify).
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { percentile } from './lib/stats.ts';

const args = new Map(process.argv.slice(2).map((arg) => arg.replace(/^--/, '').split('=') as [string, string]));
const RATE = Number(args.get('rate') ?? 4000);
const SECONDS = Number(args.get('seconds') ?? 5);
const REDIS_URL = args.get('redis') ?? 'redis://127.0.0.1:6379';
const POSTGRES_URL = args.get('postgres') ?? 'postgres://postgres@127.0.0.1:5432/test';
const PAYLOAD = JSON.stringify({
  i: 'vm:1234:abcdef',
  e: { type: 'entry', message: { type: 'tap', cursor: '1042', pad: 'x'.repeat(330) } },
});

interface Candidate {
  name: string;
  /** Starts receiving; calls `received(sentAt)` per message. */
  listen(received: (sentAt: number) => void): Promise<void>;
  publish(sentAt: number): Promise<unknown>;
  close(): Promise<void>;
}

const channel = `bench-bus-${process.pid}`;

function redisPubSub(): Candidate {
  const publisher = new Redis(REDIS_URL);
  const subscriber = new Redis(REDIS_URL);
  return {
    name: 'Redis pub/sub',
    async listen(received) {
      subscriber.on('message', (_channel: string, message: string) => received(Number(message.slice(0, message.indexOf('|')))));
      await subscriber.subscribe(channel);
    },
    publish: (sentAt) => publisher.publish(channel, `${sentAt}|${PAYLOAD}`),
    async close() {
      subscriber.disconnect();
      publisher.disconnect();
    },
  };
}

function redisStreams(): Candidate {
  const publisher = new Redis(REDIS_URL);
  const reader = new Redis(REDIS_URL);
  let reading = true;
  return {
    name: 'Redis Streams (XADD, XREAD BLOCK; MAXLEN ~10000)',
    async listen(received) {
      let last = '$';
      void (async () => {
        while (reading) {
          const result = (await reader.xread('COUNT', 500, 'BLOCK', 1000, 'STREAMS', channel, last).catch(() => null)) as Array<
            [string, Array<[string, string[]]>]
          > | null;
          for (const [, entries] of result ?? []) {
            for (const [id, fields] of entries) {
              last = id;
              received(Number(fields[1]));
            }
          }
        }
      })();
    },
    publish: (sentAt) => publisher.xadd(channel, 'MAXLEN', '~', '10000', '*', 't', String(sentAt), 'p', PAYLOAD),
    async close() {
      reading = false;
      await publisher.del(channel);
      reader.disconnect();
      publisher.disconnect();
    },
  };
}

function postgresNotify(): Candidate {
  const publisher = new pg.Pool({ connectionString: POSTGRES_URL, max: 4 });
  const listener = new pg.Client({ connectionString: POSTGRES_URL });
  const name = channel.replaceAll('-', '_');
  return {
    name: 'PostgreSQL LISTEN/NOTIFY (pg_notify)',
    async listen(received) {
      await listener.connect();
      listener.on('notification', (message) => received(Number(message.payload!.slice(0, message.payload!.indexOf('|')))));
      await listener.query(`listen ${name}`);
    },
    publish: (sentAt) => publisher.query('select pg_notify($1, $2)', [name, `${sentAt}|${PAYLOAD}`]),
    async close() {
      await listener.end();
      await publisher.end();
    },
  };
}

async function measure(candidate: Candidate) {
  const latencies: number[] = [];
  await candidate.listen((sentAt) => latencies.push(performance.now() - sentAt));
  // Open loop at RATE: a tick every millisecond sends what is due.
  const total = RATE * SECONDS;
  const started = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * RATE));
      for (; sent < due; sent++) void candidate.publish(performance.now());
      if (sent >= total) {
        clearInterval(tick);
        resolve();
      }
    }, 1);
  });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  // Closed loop: how many per second one connection publishes with 64 in flight.
  const ceilingStart = performance.now();
  let done = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (performance.now() - ceilingStart < 2000) {
        await candidate.publish(performance.now());
        done++;
      }
    }),
  );
  const ceiling = Math.round(done / ((performance.now() - ceilingStart) / 1000));
  await new Promise((resolve) => setTimeout(resolve, 500));
  await candidate.close();
  const open = latencies.slice(0, total);
  open.sort((a, b) => a - b);
  return {
    name: candidate.name,
    received: `${open.length}/${total}`,
    p50: percentile(open, 50),
    p99: percentile(open, 99),
    max: open.at(-1) ?? Number.NaN,
    ceiling,
  };
}

const rows = [];
for (const candidate of [redisPubSub(), redisStreams(), postgresNotify()]) rows.push(await measure(candidate));
const ms = (value: number) => `${value.toFixed(2)} ms`;
console.log(`| candidate | received at ${RATE}/s for ${SECONDS} s | p50 | p99 | max | closed-loop ceiling, one connection |`);
console.log('| --- | --- | --- | --- | --- | --- |');
for (const row of rows)
  console.log(`| ${row.name} | ${row.received} | ${ms(row.p50)} | ${ms(row.p99)} | ${ms(row.max)} | ${row.ceiling}/s |`);
