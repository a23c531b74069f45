import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sqliteFastPath } from '../../src/billing/sqlite-fast.js';
import type { UsageRecord } from '../../src/billing/store.js';
import { type Db, openDatabase } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrations.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { usageRecord } from '../helpers/usage.js';

/**
 * SQLite's group commit (src/billing/sqlite-group-commit.ts) on a real file, observed from a second
 * connection: what that connection sees is what is committed.
 */
describe('SQLite group commit', () => {
  let t: TestDatabase;
  let db: Db;
  let fast: NonNullable<ReturnType<typeof sqliteFastPath>>;
  let other: SQLite.Database;

  beforeEach(async () => {
    t = await createTestDatabase('sqlite');
    db = openDatabase({ kind: 'sqlite', path: join(t.dataDir, 'gatewayz.db') } as never);
    await migrateToLatest(db.db, 'sqlite');
    await db.db
      .insertInto('users')
      .values({
        id: 'u1',
        role: 'user',
        status: 'active',
        balance_micros: 10_000,
        held_micros: 0,
        created_at: 0,
        updated_at: 0,
      } as never)
      .execute();
    fast = sqliteFastPath(db)!;
    other = new SQLite(join(t.dataDir, 'gatewayz.db'), { readonly: true });
  });
  afterEach(async () => {
    other.close();
    await db.close();
    await t.drop();
  });

  const committed = () =>
    other.prepare('SELECT balance_micros, held_micros FROM users WHERE id = ?').get('u1') as {
      balance_micros: number;
      held_micros: number;
    };
  const hold = (id: string, amount: number) =>
    fast.commits.run(() => fast.path.hold(id, 'u1', null, amount, `req-${id}`, Date.now(), 60_000), false);
  const usage = (id: string, cost: number): UsageRecord => usageRecord('u1', `req-${id}`, cost);
  const settle = (id: string, cost: number) =>
    fast.commits.run(() => fast.path.settle(id, cost, usage(id, cost), null));

  const endOfTurn = () => new Promise((r) => setImmediate(r));

  it('answers a hold before its batch commits, and a settle only after', async () => {
    expect(await hold('h1', 4_000)).toBe(true);
    // Answered, not yet committed: the other connection still reads the state before the hold.
    expect(committed().held_micros).toBe(0);
    // A transaction in which only holds ran stays open for the requests' settles (one COMMIT for a
    // request's hold and settle), however many turns pass meanwhile ...
    await endOfTurn();
    await endOfTurn();
    expect(committed().held_micros).toBe(0);
    const before = { ...fast.commits.stats };
    expect(await settle('h1', 1_500)).toBe(8_500);
    // ... and commits with the first: the settle's promise resolved, its charge is committed.
    expect(committed()).toEqual({ balance_micros: 8_500, held_micros: 0 });
    expect(fast.commits.stats.batches - before.batches).toBe(1);
    expect(fast.commits.stats.ops - before.ops).toBe(2);
  });

  it('commits a transaction in which only holds ran at most a few milliseconds later', async () => {
    const t0 = performance.now();
    expect(await hold('h1', 4_000)).toBe(true);
    expect(await hold('h2', 1_000)).toBe(true);
    await endOfTurn();
    expect(await hold('h3', 500)).toBe(true); // a later turn's hold does not put the COMMIT off
    while (committed().held_micros === 0 && performance.now() - t0 < 2_000)
      await new Promise((r) => setTimeout(r, 1));
    expect(committed().held_micros).toBe(5_500);
    // the timer starts at the first hold that waits (5 ms); the event loop may add a little
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it('commits an open transaction of holds before a statement of its own connection runs', async () => {
    expect(await hold('h1', 4_000)).toBe(true);
    const row = await db.db
      .selectFrom('users')
      .select('held_micros')
      .where('id', '=', 'u1')
      .executeTakeFirst();
    expect(row?.held_micros).toBe(4_000);
    expect(committed().held_micros).toBe(4_000);
  });

  it('runs the holds and settles of one turn of the event loop as one transaction', async () => {
    const before = { ...fast.commits.stats };
    const ops = [hold('h1', 1_000), settle('h3', 300), hold('h2', 2_000)];
    expect(committed().held_micros).toBe(0);
    expect(await Promise.all(ops)).toEqual([true, 9_700, true]);
    expect(fast.commits.stats.batches - before.batches).toBe(1);
    expect(fast.commits.stats.ops - before.ops).toBe(3);
    expect(committed()).toEqual({ balance_micros: 9_700, held_micros: 3_000 });
  });

  it('never holds more than the balance, whatever the batching', async () => {
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => hold(`h${i}`, 1_000)));
    expect(results.filter(Boolean)).toHaveLength(10);
    await new Promise((r) => setTimeout(r, 20));
    expect(committed().held_micros).toBe(10_000);
  });

  it('undoes an operation that throws alone; the rest of the batch commits', async () => {
    const ok = hold('h1', 2_000);
    const bad = fast.commits.run(() => {
      fast.path.hold('h2', 'u1', null, 3_000, 'req-h2', Date.now(), 60_000);
      throw new Error('boom');
    });
    const ok2 = settle('h1', 500);
    await expect(bad).rejects.toThrow('boom');
    expect(await ok).toBe(true);
    expect(await ok2).toBe(9_500);
    expect(committed()).toEqual({ balance_micros: 9_500, held_micros: 0 });
    expect(other.prepare('SELECT count(*) AS n FROM holds').get()).toEqual({ n: 0 });
    expect(
      other.prepare("SELECT count(*) AS n FROM usage_records WHERE request_id = 'req-h1'").get(),
    ).toEqual({
      n: 1,
    });
  });

  it('undoes a hold that throws midway alone; holds already answered in its batch stay', async () => {
    const first = hold('h1', 2_000);
    const bad = fast.commits.run(() => {
      fast.path.hold('h2', 'u1', null, 3_000, 'req-h2', Date.now(), 60_000); // ran: its writes must go
      throw new Error('boom');
    }, false);
    const third = hold('h3', 1_000);
    const settled = settle('h1', 500);
    expect(await first).toBe(true);
    await expect(bad).rejects.toThrow('boom');
    expect(await third).toBe(true);
    expect(await settled).toBe(9_500);
    expect(committed()).toEqual({ balance_micros: 9_500, held_micros: 1_000 });
    expect(other.prepare('SELECT id FROM holds ORDER BY id').all()).toEqual([{ id: 'h3' }]);
  });

  it('stays consistent when SQLite rolls a whole batch back (disk full), and recovers', async () => {
    // Let the holds fit, then refuse any new page: the settles' inserts fail with SQLITE_FULL.
    expect(await hold('h1', 1_000)).toBe(true);
    expect(await hold('h2', 1_000)).toBe(true);
    await endOfTurn();
    const pages = db.sqlite!.pragma('page_count', { simple: true }) as number;
    db.sqlite!.pragma(`max_page_count = ${pages}`);
    const many = Array.from({ length: 200 }, (_, i) => `h${i + 1}`);
    const results = await Promise.allSettled(many.map((id) => settle(id, 100)));
    db.sqlite!.pragma('max_page_count = 1073741823');
    const failed = results.filter((r) => r.status === 'rejected');
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.length).toBeLessThan(many.length);
    for (const f of failed) expect(String((f as PromiseRejectedResult).reason)).toMatch(/full/i);
    // Whatever was answered is what is committed: each settled charge has its usage row, no more.
    const charged = results.filter((r) => r.status === 'fulfilled').length;
    const rows = other.prepare('SELECT count(*) AS n FROM usage_records').get() as { n: number };
    expect(rows.n).toBe(charged);
    expect(committed().balance_micros).toBe(10_000 - 100 * charged);
    const held = other.prepare('SELECT coalesce(sum(amount_micros), 0) AS s FROM holds').get() as {
      s: number;
    };
    expect(committed().held_micros).toBe(held.s);
    // And it goes on working.
    await db.db.updateTable('users').set({ balance_micros: 10_000 }).where('id', '=', 'u1').execute();
    expect(await hold('later', 500)).toBe(true);
    expect(await settle('later', 200)).toBe(9_800);
  });

  it("commits the open batch before any of Kysely's statements runs", async () => {
    expect(await hold('h1', 1_000)).toBe(true);
    expect(committed().held_micros).toBe(0);
    // A Kysely transaction would fail to BEGIN inside our open batch; it commits the batch first.
    await db.db.transaction().execute(async (trx) => {
      expect(committed().held_micros).toBe(1_000);
      await trx.updateTable('users').set({ updated_at: 1 }).where('id', '=', 'u1').execute();
    });
    // A settle queued behind Kysely's statements still runs, in a batch of its own.
    expect(await settle('h1', 250)).toBe(9_750);
    expect(committed()).toEqual({ balance_micros: 9_750, held_micros: 0 });
  });

  it('waits for an open Kysely transaction, then runs', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const trx = db.db.transaction().execute(async (k) => {
      await k
        .updateTable('users')
        .set({ balance_micros: sql`balance_micros + 5000` })
        .where('id', '=', 'u1')
        .execute();
      await gate;
      await k.updateTable('users').set({ updated_at: 2 }).where('id', '=', 'u1').execute();
    });
    await new Promise((r) => setTimeout(r, 20));
    let held: boolean | null = null;
    const h = hold('h1', 12_000).then((v) => {
      held = v;
      return v;
    });
    await new Promise((r) => setTimeout(r, 20));
    // Still waiting for the transaction's connection: it ran nothing inside someone else's transaction.
    expect(held).toBeNull();
    release();
    await trx;
    // The hold sees the transaction's credit (15,000 available).
    expect(await h).toBe(true);
    expect(await settle('h1', 100)).toBe(14_900);
    expect(committed()).toEqual({ balance_micros: 14_900, held_micros: 0 });
  });
});
