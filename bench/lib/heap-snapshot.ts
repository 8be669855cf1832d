import { readFileSync } from 'node:fs';

/** The fields of a V8 .heapsnapshot that a per-kind tally needs. */
interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export type HeapTally = Map<string, { count: number; bytes: number }>;

/**
 * Shallow size and count of every live object, by kind: the constructor
 * name for objects ("Object: ClientConnection"), the type otherwise
 * ("closure: onMessage", "string"). Strings are not named by their content.
 */
export function tallyHeap(path: string): HeapTally {
  const heap = JSON.parse(readFileSync(path, 'utf8')) as HeapSnapshot;
  const fields = heap.snapshot.meta.node_fields;
  const types = heap.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const tally: HeapTally = new Map();
  for (let i = 0; i < heap.nodes.length; i += width) {
    const type = types[heap.nodes[i + typeAt]!] ?? 'unknown';
    const named = type === 'object' || type === 'closure' || type === 'native' || type === 'hidden';
    const key = named ? `${type}: ${heap.strings[heap.nodes[i + nameAt]!] ?? '?'}` : type;
    const entry = tally.get(key) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += heap.nodes[i + sizeAt]!;
    tally.set(key, entry);
  }
  return tally;
}

/** What `sockets` sockets added, per socket, largest first. */
export function perSocketGrowth(withSockets: HeapTally, without: HeapTally, sockets: number, top = 20) {
  return [...withSockets]
    .map(([kind, { count, bytes }]) => {
      const base = without.get(kind) ?? { count: 0, bytes: 0 };
      return { kind, objectsPerSocket: (count - base.count) / sockets, bytesPerSocket: (bytes - base.bytes) / sockets };
    })
    .sort((a, b) => b.bytesPerSocket - a.bytesPerSocket)
    .slice(0, top);
}
