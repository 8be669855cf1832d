import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Migration } from 'kysely/migration';
import type { DialectName } from '../dialect.ts';

/**
 * The delivery log (docs/delivery.md): one log per user, with consecutive
 * positions, holding taps to and from the user, receipts of the taps they
 * sent and pairing changes. Existing data is carried over: every tap becomes
 * an entry in its sender's and its recipient's log, every recorded
 * delivered/seen time a receipt in the sender's log, every pairing an entry
 * in both partners' logs, in the order they happened.
 *
 * The tap's old global cursor (`seq`) stays as an internal key. The two
 * per-user indexes on taps go: the logs index a user's taps now. The foreign
 * keys from taps to users and devices go with them (on SQLite the taps table
 * is rebuilt for that): without an index they made every device removal and
 * account deletion scan the whole table; an account's taps are deleted
 * through its log instead (modules/accounts).
 */
export function deliveryLogMigration(dialect: DialectName): Migration {
  return { up: (db) => (dialect === 'sqlite' ? upSqlite(db) : upPostgres(db)) };
}

const run = async (db: Kysely<unknown>, statements: RawBuilder<unknown>[]) => {
  for (const statement of statements) await statement.execute(db);
};

/** Every event of the existing data, as a log entry, numbered per user in the order it happened. */
function backfill(dialect: DialectName): RawBuilder<unknown> {
  // A receipt never comes before its tap, even if clocks disagreed.
  const notBefore = (time: string) => sql.raw(dialect === 'sqlite' ? `max(${time}, created_at)` : `greatest(${time}, created_at)`);
  return sql`
    select user_id, row_number() over (partition by user_id order by at, tiebreak, ord) as pos,
           kind, subject, peer_id, detail, at
    from (
      select sender_id as user_id, 'tap' as kind, id as subject, recipient_id as peer_id, cast(null as text) as detail,
             created_at as at, seq as tiebreak, 1 as ord from taps
      union all
      select recipient_id, 'tap', id, sender_id, cast(null as text), created_at, seq, 1 from taps
      union all
      select sender_id, 'tap.status', id, recipient_id, 'delivered', ${notBefore('delivered_at')}, seq, 2
        from taps where delivered_at is not null
      union all
      select sender_id, 'tap.status', id, recipient_id, 'seen', ${notBefore('seen_at')}, seq, 3
        from taps where seen_at is not null
      union all
      select user_a, 'pairing.created', id, user_b, cast(null as text), created_at, 0, 0 from pairings
      union all
      select user_b, 'pairing.created', id, user_a, cast(null as text), created_at, 0, 0 from pairings
    ) as events`;
}

const setHeads = sql`update users set log_head = coalesce((select max(pos) from log_entries where log_entries.user_id = users.id), 0)`;

async function upSqlite(db: Kysely<unknown>): Promise<void> {
  // SQLite migrations are not transactional in Kysely; this one is (below), so
  // a crash leaves it either undone or done. Done but not recorded: skip.
  const done = await sql<{ n: number }>`select count(*) as n from sqlite_master where name = 'log_entries'`.execute(db);
  if (Number(done.rows[0]?.n) > 0) return;
  // Rebuilding taps must not cascade into its delivery rows: foreign keys off
  // (only possible outside a transaction), checked again before committing.
  await sql`pragma foreign_keys = off`.execute(db);
  try {
    await db.transaction().execute(async (trx) => {
      await run(trx, [
        sql`alter table users add column log_head integer not null default 0`,
        sql`create table log_entries (
              user_id text not null references users(id) on delete cascade,
              pos integer not null,
              kind text not null,
              subject text not null,
              peer_id text not null,
              detail text,
              at integer not null,
              primary key (user_id, pos)
            ) without rowid`,
        sql`create temp table log_backfill as ${backfill('sqlite')}`,
        sql`create index temp.log_backfill_subject on log_backfill (subject, user_id)`,
        sql`insert into log_entries (user_id, pos, kind, subject, peer_id, detail, at)
            select user_id, pos, kind, subject, peer_id, detail, at from log_backfill`,
        sql`create table taps_v2 (
              seq integer primary key autoincrement,
              id text not null unique,
              sender_id text not null,
              sender_device_id text,
              recipient_id text not null,
              sender_pos integer not null,
              recipient_pos integer not null,
              intensity text not null,
              pattern text not null,
              created_at integer not null,
              delivered_at integer,
              seen_at integer
            )`,
        sql`insert into taps_v2 (seq, id, sender_id, sender_device_id, recipient_id, sender_pos, recipient_pos,
                                 intensity, pattern, created_at, delivered_at, seen_at)
            select t.seq, t.id, t.sender_id, t.sender_device_id, t.recipient_id, s.pos, r.pos,
                   t.intensity, t.pattern, t.created_at, t.delivered_at, t.seen_at
            from taps t
            join log_backfill s on s.subject = t.id and s.user_id = t.sender_id and s.kind = 'tap'
            join log_backfill r on r.subject = t.id and r.user_id = t.recipient_id and r.kind = 'tap'`,
        sql`drop table taps`,
        sql`alter table taps_v2 rename to taps`,
        sql`drop table temp.log_backfill`,
        setHeads,
      ]);
      const broken = await sql`pragma foreign_key_check`.execute(trx);
      if (broken.rows.length > 0) throw new Error(`delivery log migration broke ${broken.rows.length} foreign key(s)`);
    });
  } finally {
    await sql`pragma foreign_keys = on`.execute(db);
  }
}

async function upPostgres(db: Kysely<unknown>): Promise<void> {
  await run(db, [
    sql`alter table users add column log_head bigint not null default 0`,
    sql`create table log_entries (
          user_id text not null references users(id) on delete cascade,
          pos bigint not null,
          kind text not null,
          subject text not null,
          peer_id text not null,
          detail text,
          at bigint not null,
          primary key (user_id, pos)
        )`,
    sql`create temp table log_backfill on commit drop as ${backfill('postgres')}`,
    sql`create index on log_backfill (subject, user_id)`,
    sql`insert into log_entries (user_id, pos, kind, subject, peer_id, detail, at)
        select user_id, pos, kind, subject, peer_id, detail, at from log_backfill`,
    sql`alter table taps add column sender_pos bigint, add column recipient_pos bigint`,
    sql`update taps t set sender_pos = b.pos from log_backfill b where b.subject = t.id and b.user_id = t.sender_id and b.kind = 'tap'`,
    sql`update taps t set recipient_pos = b.pos from log_backfill b where b.subject = t.id and b.user_id = t.recipient_id and b.kind = 'tap'`,
    sql`alter table taps alter column sender_pos set not null, alter column recipient_pos set not null`,
    sql`alter table taps drop constraint if exists taps_sender_id_fkey, drop constraint if exists taps_recipient_id_fkey,
        drop constraint if exists taps_sender_device_id_fkey`,
    sql`drop index if exists taps_sender_seq`,
    sql`drop index if exists taps_recipient_seq`,
    setHeads,
  ]);
}
