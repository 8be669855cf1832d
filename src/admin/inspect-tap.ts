import { existsSync } from 'node:fs';
import type { DatabaseConfig } from '../config.ts';
import { openDatabase } from '../db/database.ts';
import { readTapDetail } from '../modules/taps/service.ts';
import type { TapDetail } from '../modules/taps/schemas.ts';
import { AdminError } from './sqlite-backup.ts';

/** One tap for support: the record GET /v1/taps/{id} answers, as a table or as JSON. */
export async function inspectTap(config: DatabaseConfig, tapId: string, options: { json: boolean }): Promise<string> {
  if (config.kind === 'sqlite' && !existsSync(config.path)) throw new AdminError(`there is no SQLite database at ${config.path}`);
  const database = openDatabase(config);
  let detail: TapDetail | undefined;
  try {
    detail = await readTapDetail(database.db, tapId);
  } finally {
    await database.close();
  }
  if (!detail) throw new AdminError(`no tap with id ${tapId}`);
  return options.json ? `${JSON.stringify(detail, null, 2)}\n` : render(detail);
}

function render({ tap, deliveries }: TapDetail): string {
  const rows = deliveries.map((d) => [
    d.deviceId,
    d.platform,
    d.status,
    d.channel ?? '-',
    d.deliveredAt ?? '-',
    d.push.state,
    d.push.trigger,
    String(d.push.attempts),
    d.push.lastReason ?? '-',
    d.push.sentAt ?? '-',
  ]);
  const header = ['device', 'platform', 'status', 'channel', 'delivered at', 'push', 'trigger', 'attempts', 'last reason', 'pushed at'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `  ${cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd();
  return [
    `tap ${tap.id} (cursor ${tap.cursor})`,
    `  from ${tap.from} to ${tap.to}, ${tap.intensity} ${tap.pattern}, created ${tap.createdAt}`,
    `  status ${tap.status}${tap.deliveredAt ? `, delivered ${tap.deliveredAt}` : ''}${tap.seenAt ? `, seen ${tap.seenAt}` : ''}`,
    '',
    deliveries.length === 0 ? '  no delivery rows (the recipient had no device when it was sent)' : line(header),
    ...rows.map(line),
    '',
  ].join('\n');
}
