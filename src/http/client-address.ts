import { isIPv4, isIPv6 } from 'node:net';
import type { TrustProxy } from '../config.ts';

/**
 * Fastify's trustProxy from the configuration. A hop count becomes "believe
 * the last N hops": the peer (a proxy) and what each trusted proxy appended;
 * the first untrusted hop is the client. Anything a client writes into
 * X-Forwarded-For itself sits to the left of those and is never read.
 */
export function fastifyTrustProxy(trust: TrustProxy): false | string[] | ((address: string, hop: number) => boolean) {
  if (typeof trust === 'number') return trust === 0 ? false : (_address, hop) => hop < trust;
  return trust;
}

/**
 * The key per-address limits count against: an IPv4 address, or the /64 an
 * IPv6 address belongs to (one subscriber gets a whole /64, so counting
 * single IPv6 addresses would hand every attacker 2^64 budgets).
 */
export function clientNetwork(ip: string): string {
  const address = ip.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (isIPv4(address) || !isIPv6(address)) return address;
  return `${expandIPv6(address).slice(0, 4).join(':')}::/64`;
}

function expandIPv6(address: string): string[] {
  const [head = '', tail] = address.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  // An embedded IPv4 tail (::ffff:1.2.3.4 handled above; here e.g. 64:ff9b::1.2.3.4) takes two groups.
  const groups = [
    ...left,
    ...Array<string>(Math.max(0, 8 - left.length - right.length - (right.at(-1)?.includes('.') ? 1 : 0))).fill('0'),
    ...right,
  ];
  return groups.map((group) => (group.includes('.') ? group : group.replace(/^0+(?=.)/, '')));
}
