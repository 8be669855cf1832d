import type { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Presence } from './presence.ts';
import type { ConnectionRegistry, RegisteredConnection } from './registry.ts';

/**
 * Presence shared by every instance, in Redis (docs/scaling.md#presence).
 *
 * - `<p>presence:<user>`: a hash, one field per device and instance
 *   (`<device>|<instance>`), valued with that instance's socket count for the
 *   device. Only the owning instance writes its fields, with absolute counts
 *   read from its registry, so a write can be repeated safely (after Redis
 *   comes back, the instance writes them all again).
 * - `<p>instances`: a sorted set of the live instances, scored by their last
 *   heartbeat (Redis's own clock). A field counts only while its instance's
 *   heartbeat is recent, so an instance killed with SIGKILL leaves no online
 *   "zombie": its users are offline `ttl` after its last heartbeat.
 * - `<p>instance:<id>:users`: the users with fields of that instance, so a
 *   survivor can remove a dead instance's fields and tell the partners of
 *   those who went offline.
 *
 * Each operation is one Lua script, so it is atomic. While Redis is
 * unreachable, answers come from this instance's registry alone (what it
 * cannot know, it treats as offline: such a device is pushed, not lost).
 */
const LIVE = `
local now_t = redis.call('TIME')
local now = tonumber(now_t[1]) * 1000 + math.floor(tonumber(now_t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local alive = {}
local function live(field)
  local instance = string.match(field, '|(.+)$')
  if alive[instance] == nil then
    local beat = redis.call('ZSCORE', KEYS[1], instance)
    alive[instance] = beat ~= false and (now - tonumber(beat)) < ttl
  end
  return alive[instance]
end
local function devices(key)
  local found = {}
  local fields = redis.call('HGETALL', key)
  for i = 1, #fields, 2 do
    if tonumber(fields[i + 1]) > 0 and live(fields[i]) then found[#found + 1] = string.match(fields[i], '^(.-)|') end
  end
  return found
end
`;

/** KEYS: instances, presence hash, instance users; ARGV: ttl, field, count, user. Returns {live devices before, after}. */
const SET_COUNT = `${LIVE}
local before = #devices(KEYS[2])
if tonumber(ARGV[3]) > 0 then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  redis.call('SADD', KEYS[3], ARGV[4])
else
  redis.call('HDEL', KEYS[2], ARGV[2])
  local instance = string.match(ARGV[2], '|(.+)$')
  local still = false
  for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
    if string.match(field, '|(.+)$') == instance then still = true end
  end
  if not still then redis.call('SREM', KEYS[3], ARGV[4]) end
end
return {before, #devices(KEYS[2])}
`;

/** KEYS: instances, then one presence hash per user; ARGV: ttl. Returns the live devices of each. */
const QUERY = `${LIVE}
local out = {}
for i = 2, #KEYS do out[#out + 1] = devices(KEYS[i]) end
return out
`;

/** KEYS: instances; ARGV: ttl, this instance. Records the heartbeat, returns the instances whose heartbeat is too old. */
const BEAT = `${LIVE}
redis.call('ZADD', KEYS[1], now, ARGV[2])
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
`;

/**
 * KEYS: instances, the dead instance's users; ARGV: ttl, dead instance, key prefix, batch size.
 * Removes the dead instance's fields of up to `batch` users; returns {users now offline, done}.
 */
const REAP = `${LIVE}
local offline = {}
local users = redis.call('SPOP', KEYS[2], tonumber(ARGV[4]))
for _, user in ipairs(users) do
  local key = ARGV[3] .. 'presence:' .. user
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.match(field, '|(.+)$') == ARGV[2] then redis.call('HDEL', key, field) end
  end
  if #devices(key) == 0 then offline[#offline + 1] = user end
end
local done = redis.call('SCARD', KEYS[2]) == 0
if done then redis.call('ZREM', KEYS[1], ARGV[2]) end
return {offline, done and 1 or 0}
`;

type Scripts = {
  naviPresenceSet(
    instances: string,
    hash: string,
    users: string,
    ttl: number,
    field: string,
    count: number,
    user: string,
  ): Promise<[number, number]>;
  naviPresenceQuery(numKeys: number, ...args: Array<string | number>): Promise<string[][]>;
  naviPresenceBeat(instances: string, ttl: number, instance: string): Promise<string[]>;
  naviPresenceReap(instances: string, users: string, ttl: number, dead: string, prefix: string, batch: number): Promise<[string[], number]>;
};

interface Deps {
  redis: Redis;
  registry: ConnectionRegistry;
  prefix: string;
  instanceId: string;
  /** How often this instance beats; an instance is dead three beats after its last. */
  heartbeatMs: number;
  logger: Logger;
  metrics: Metrics;
  /** Users whose last device was on an instance that died: the caller tells their partners. */
  onOffline: (userIds: string[]) => void;
}

export class RedisPresence implements Presence {
  readonly #deps: Deps;
  readonly #redis: Redis & Scripts;
  readonly #ttlMs: number;
  readonly #instances: string;
  #timer: NodeJS.Timeout | undefined;
  #degraded = false;

  constructor(deps: Deps) {
    this.#deps = deps;
    this.#ttlMs = deps.heartbeatMs * 3;
    this.#instances = `${deps.prefix}instances`;
    const redis = deps.redis as Redis & Scripts;
    redis.defineCommand('naviPresenceSet', { numberOfKeys: 3, lua: SET_COUNT });
    redis.defineCommand('naviPresenceQuery', { lua: QUERY });
    redis.defineCommand('naviPresenceBeat', { numberOfKeys: 1, lua: BEAT });
    redis.defineCommand('naviPresenceReap', { numberOfKeys: 2, lua: REAP });
    this.#redis = redis;
    // Back after an outage: everything this instance holds is written again (the writes are absolute counts).
    redis.on('ready', () => {
      if (this.#degraded) void this.#rewriteAll();
    });
  }

  /** Beats at once, then every heartbeat; each beat also reaps instances that died. */
  async start(): Promise<void> {
    await this.#beat();
    this.#timer = setInterval(() => void this.#beat(), this.#deps.heartbeatMs);
    this.#timer.unref();
  }

  async opened(connection: RegisteredConnection): Promise<boolean> {
    const counts = await this.#write(connection);
    return counts !== undefined ? counts[0] === 0 && counts[1] > 0 : this.#deps.registry.connectionsOfUser(connection.userId).length === 1;
  }

  async closed(connection: RegisteredConnection): Promise<boolean> {
    const counts = await this.#write(connection);
    return counts !== undefined ? counts[0] > 0 && counts[1] === 0 : !this.#deps.registry.isUserOnline(connection.userId);
  }

  async onlineUsers(userIds: string[]): Promise<Set<string>> {
    if (userIds.length === 0) return new Set();
    const devices = await this.#query(userIds);
    if (!devices) return new Set(userIds.filter((id) => this.#deps.registry.isUserOnline(id)));
    return new Set(userIds.filter((_, i) => devices[i]!.length > 0));
  }

  async onlineDevices(userId: string): Promise<string[]> {
    const devices = await this.#query([userId]);
    if (!devices) return this.#deps.registry.onlineDevices(userId);
    return [...new Set(devices[0])];
  }

  /** Leaves Redis as if this instance had never been: its fields, its users, its heartbeat. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    try {
      const users = `${this.#deps.prefix}instance:${this.#deps.instanceId}:users`;
      for (;;) {
        const [, done] = await this.#redis.naviPresenceReap(
          this.#instances,
          users,
          this.#ttlMs,
          this.#deps.instanceId,
          this.#deps.prefix,
          500,
        );
        if (done) break;
      }
    } catch (error) {
      this.#deps.logger.warn({ err: error }, 'presence: could not clean up at shutdown; the heartbeat ends, others reap it');
    }
  }

  #hash = (userId: string) => `${this.#deps.prefix}presence:${userId}`;

  async #write(connection: RegisteredConnection): Promise<[number, number] | undefined> {
    const count = this.#deps.registry.connectionsOfDevice(connection.deviceId).length;
    try {
      const counts = await this.#redis.naviPresenceSet(
        this.#instances,
        this.#hash(connection.userId),
        `${this.#deps.prefix}instance:${this.#deps.instanceId}:users`,
        this.#ttlMs,
        `${connection.deviceId}|${this.#deps.instanceId}`,
        count,
        connection.userId,
      );
      return counts;
    } catch (error) {
      this.#fallBack(error);
      return undefined;
    }
  }

  async #query(userIds: string[]): Promise<string[][] | undefined> {
    try {
      return await this.#redis.naviPresenceQuery(userIds.length + 1, this.#instances, ...userIds.map(this.#hash), this.#ttlMs);
    } catch (error) {
      this.#fallBack(error);
      return undefined;
    }
  }

  async #beat(): Promise<void> {
    let dead: string[];
    try {
      dead = await this.#redis.naviPresenceBeat(this.#instances, this.#ttlMs, this.#deps.instanceId);
    } catch (error) {
      this.#fallBack(error);
      return;
    }
    for (const instance of dead) {
      if (instance === this.#deps.instanceId) continue;
      const users = `${this.#deps.prefix}instance:${instance}:users`;
      try {
        for (;;) {
          const [offline, done] = await this.#redis.naviPresenceReap(this.#instances, users, this.#ttlMs, instance, this.#deps.prefix, 500);
          if (offline.length > 0) this.#deps.onOffline(offline);
          if (done) break;
        }
        this.#deps.logger.info({ instance }, 'presence: an instance stopped beating; its users were taken offline');
      } catch (error) {
        this.#fallBack(error);
        return;
      }
    }
  }

  async #rewriteAll(): Promise<void> {
    const devices = new Map<string, RegisteredConnection>();
    for (const connection of this.#deps.registry.all()) devices.set(connection.deviceId, connection);
    try {
      await this.#beat();
      for (const connection of devices.values()) await this.#write(connection);
      this.#degraded = false;
      this.#deps.logger.info({ devices: devices.size }, 'presence: Redis is back; this instance wrote its connections again');
    } catch (error) {
      this.#fallBack(error);
    }
  }

  #fallBack(error: unknown): void {
    this.#deps.metrics.presenceFallbacks.inc();
    if (!this.#degraded) this.#deps.logger.warn({ err: error }, 'presence: Redis is unavailable; answering from this instance alone');
    this.#degraded = true;
  }
}
