/** What the registry needs to know about a live, authenticated connection. */
export interface RegisteredConnection {
  readonly userId: string;
  readonly deviceId: string;
}

export interface Limits {
  maxPerDevice: number;
  maxPerUser: number;
}

/**
 * The live connections of this instance, by user and by device. It enforces
 * the per-device and per-user caps by evicting the oldest connection: a phone
 * reconnecting over a half-dead link must get in at once, not wait for its
 * old socket to time out. Presence (presence.ts) is built on it.
 */
export class ConnectionRegistry<C extends RegisteredConnection = RegisteredConnection> {
  readonly #byUser = new Map<string, Set<C>>();
  readonly #byDevice = new Map<string, Set<C>>();
  readonly #limits: Limits;

  constructor(limits: Limits) {
    this.#limits = limits;
  }

  /** Adds the connection; returns the connections it displaces. */
  add(connection: C): { evicted: C[] } {
    const evicted: C[] = [];
    const deviceSet = this.#byDevice.get(connection.deviceId);
    if (deviceSet && deviceSet.size >= this.#limits.maxPerDevice)
      evicted.push(...oldest(deviceSet, deviceSet.size - this.#limits.maxPerDevice + 1));
    const userSet = this.#byUser.get(connection.userId);
    if (userSet) {
      const remaining = [...userSet].filter((c) => !evicted.includes(c));
      if (remaining.length >= this.#limits.maxPerUser) evicted.push(...remaining.slice(0, remaining.length - this.#limits.maxPerUser + 1));
    }
    for (const c of evicted) this.remove(c);
    insert(this.#byUser, connection.userId, connection);
    insert(this.#byDevice, connection.deviceId, connection);
    return { evicted };
  }

  /** Removes the connection; false when it was not registered (already removed). */
  remove(connection: C): boolean {
    const known = this.#byUser.get(connection.userId)?.has(connection) ?? false;
    if (!known) return false;
    erase(this.#byUser, connection.userId, connection);
    erase(this.#byDevice, connection.deviceId, connection);
    return true;
  }

  isUserOnline(userId: string): boolean {
    return this.#byUser.has(userId);
  }

  isDeviceOnline(deviceId: string): boolean {
    return this.#byDevice.has(deviceId);
  }

  onlineDevices(userId: string): string[] {
    const connections = this.#byUser.get(userId);
    return connections ? [...new Set([...connections].map((c) => c.deviceId))] : [];
  }

  connectionsOfUser(userId: string): C[] {
    return [...(this.#byUser.get(userId) ?? [])];
  }

  connectionsOfDevice(deviceId: string): C[] {
    return [...(this.#byDevice.get(deviceId) ?? [])];
  }

  *all(): IterableIterator<C> {
    for (const set of this.#byUser.values()) yield* set;
  }

  get size(): number {
    let n = 0;
    for (const set of this.#byUser.values()) n += set.size;
    return n;
  }
}

/** Sets keep insertion order, so the first entries are the oldest. */
const oldest = <C>(set: Set<C>, count: number): C[] => [...set].slice(0, count);

function insert<C>(map: Map<string, Set<C>>, key: string, value: C): void {
  const set = map.get(key);
  if (set) set.add(value);
  else map.set(key, new Set([value]));
}

function erase<C>(map: Map<string, Set<C>>, key: string, value: C): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}
