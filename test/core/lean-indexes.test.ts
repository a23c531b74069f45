import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../../src/config/config.js';
import { type Db, openDatabase } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrations.js';
import { createTestDatabase, DATABASES, type TestDatabase } from '../helpers/db.js';

/**
 * Migration 066: the ledger's idempotency key and usage_records' app are indexed only where set,
 * existing rows and ids survive (on SQLite the ledger is rebuilt), the unique key still refuses a
 * duplicate, and the lookups that need the indexes still use them. New SQLite files get 1 KiB pages.
 */
describe.each(DATABASES)('lean write indexes, migration 066 (%s)', (kind) => {
  let tdb: TestDatabase | undefined;
  let db: Db | undefined;
  afterEach(async () => {
    await db?.close();
    await tdb?.drop();
    db = undefined;
    tdb = undefined;
  });

  const open = async () => {
    tdb = await createTestDatabase(kind);
    db = openDatabase(parseDatabaseUrl(tdb.url, tdb.dataDir, 5));
    return db;
  };
  const ledgerRow = (id: number | null, key: string | null, amount: number) => ({
    ...(id !== null ? { id } : {}),
    user_id: 'u1',
    kind: 'credit',
    bucket: 'paid',
    amount_micros: amount,
    balance_after: amount,
    reference: null,
    idempotency_key: key,
    description: `row ${id}`,
    created_at: 1000 + amount,
  });

  it('keeps every ledger row and the id sequence; refuses a duplicate key; allows many NULLs', async () => {
    const d = await open();
    await migrateToLatest(d.db, d.dialect, '065_pg_billing_rows_once');
    await sql`INSERT INTO users (id, email, created_at, updated_at) VALUES ('u1', 'a@example.com', 1, 1)`.execute(
      d.db,
    );
    await d.db
      .insertInto('ledger')
      .values([
        ledgerRow(1, 'k-1', 10),
        ledgerRow(2, null, 20),
        ledgerRow(7, null, 30),
        ledgerRow(9, 'k-9', 40),
      ])
      .execute();
    // The largest id is gone, as if removed by hand: the sequence must not hand it out again.
    await d.db.deleteFrom('ledger').where('id', '=', 9).execute();
    if (d.dialect === 'postgres') await sql`SELECT setval('ledger_id_seq', 9)`.execute(d.db);
    const before = await d.db.selectFrom('ledger').selectAll().orderBy('id').execute();

    await migrateToLatest(d.db, d.dialect);
    expect(await d.db.selectFrom('ledger').selectAll().orderBy('id').execute()).toEqual(before);

    const next = await d.db
      .insertInto('ledger')
      .values(ledgerRow(null, null, 50))
      .returning('id')
      .executeTakeFirstOrThrow();
    expect(Number(next.id)).toBe(10);
    await d.db
      .insertInto('ledger')
      .values([ledgerRow(null, null, 60), ledgerRow(null, 'k-2', 70)])
      .execute();
    await expect(
      d.db
        .insertInto('ledger')
        .values(ledgerRow(null, 'k-1', 80))
        .execute(),
    ).rejects.toThrow(/unique|UNIQUE/);
    expect(
      await d.db.selectFrom('ledger').select('id').where('idempotency_key', '=', 'k-1').execute(),
    ).toHaveLength(1);
    // The foreign key to users is still there.
    await expect(
      d.db
        .insertInto('ledger')
        .values({ ...ledgerRow(null, null, 90), user_id: 'nobody' })
        .execute(),
    ).rejects.toThrow();
  });

  it('indexes only the rows that have the key, and the lookups use those indexes', async () => {
    const d = await open();
    await migrateToLatest(d.db, d.dialect);
    if (d.dialect === 'sqlite') {
      const idx = await sql<{ name: string; sql: string | null }>`
        SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('ledger', 'usage_records')`.execute(
        d.db,
      );
      const byName = new Map(idx.rows.map((r) => [r.name, r.sql ?? '']));
      expect(byName.get('ledger_idempotency')).toMatch(/WHERE idempotency_key IS NOT NULL/);
      expect(byName.get('usage_app_time')).toMatch(/WHERE app IS NOT NULL/);
      // No automatic index of every row's key is left on the ledger.
      expect([...byName.keys()].filter((n) => n.startsWith('sqlite_autoindex_ledger'))).toEqual([]);
      const plan = async (q: string) =>
        (await sql<{ detail: string }>`${sql.raw(`EXPLAIN QUERY PLAN ${q}`)}`.execute(d.db)).rows
          .map((r) => r.detail)
          .join('; ');
      expect(
        await plan("SELECT id FROM ledger INDEXED BY ledger_idempotency WHERE idempotency_key = 'x'"),
      ).toMatch(/ledger_idempotency/);
      // INDEXED BY fails to plan ("no query solution") unless the query implies the index's condition.
      expect(
        await plan(
          'SELECT app, count(*) FROM usage_records INDEXED BY usage_app_time WHERE created_at >= 1 AND created_at < 2 AND app IS NOT NULL GROUP BY app',
        ),
      ).toMatch(/usage_app_time/);
      expect(d.sqlite!.pragma('page_size', { simple: true })).toBe(1024);
    } else {
      const idx = await sql<{ indexname: string; indexdef: string }>`
        SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('ledger', 'usage_records')`.execute(
        d.db,
      );
      const byName = new Map(idx.rows.map((r) => [r.indexname, r.indexdef]));
      expect(byName.get('ledger_idempotency')).toMatch(/UNIQUE.*WHERE \(idempotency_key IS NOT NULL\)/);
      expect(byName.get('usage_app_time')).toMatch(/WHERE \(app IS NOT NULL\)/);
      expect(byName.has('ledger_idempotency_key_key')).toBe(false);
      await d.db.connection().execute(async (c) => {
        await sql`SET enable_seqscan = off`.execute(c);
        const plan = async (q: string) =>
          (await sql<{ 'QUERY PLAN': string }>`${sql.raw(`EXPLAIN ${q}`)}`.execute(c)).rows
            .map((r) => r['QUERY PLAN'])
            .join('; ');
        expect(await plan("SELECT id FROM ledger WHERE idempotency_key = 'x'")).toMatch(/ledger_idempotency/);
        expect(
          await plan(
            'SELECT app, count(*) FROM usage_records WHERE created_at >= 1 AND created_at < 2 AND app IS NOT NULL GROUP BY app',
          ),
        ).toMatch(/usage_app_time/);
        await sql`RESET enable_seqscan`.execute(c);
      });
    }
  });

  it.runIf(kind === 'sqlite')('an existing SQLite file keeps its page size', async () => {
    const t = await createTestDatabase('sqlite');
    tdb = t;
    const url = parseDatabaseUrl(t.url, t.dataDir, 5);
    const { default: SQLite } = await import('better-sqlite3');
    const path = t.url.slice('sqlite:'.length);
    const raw = new SQLite(path);
    raw.pragma('page_size = 4096');
    raw.exec('CREATE TABLE t (x)');
    raw.close();
    db = openDatabase(url);
    expect(db.sqlite!.pragma('page_size', { simple: true })).toBe(4096);
  });
});
