import { copyFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteGroupCommit } from '../../src/billing/sqlite-group-commit.js';
import { Checkpointer } from '../../src/db/checkpointer.js';
import { type Db, openDatabase } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrations.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';

/** SQLite checkpoints run on a worker thread (src/db/checkpointer.ts), never inside a request's COMMIT. */
describe('SQLite checkpoints off the event loop', () => {
  let t: TestDatabase;
  let db: Db;
  const file = () => join(t.dataDir, 'gatewayz.db');

  beforeEach(async () => {
    t = await createTestDatabase('sqlite');
    db = openDatabase({ kind: 'sqlite', path: file() } as never);
    await migrateToLatest(db.db, 'sqlite');
  });
  afterEach(async () => {
    await db.close();
    await t.drop();
  });

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const walBytes = () => statSync(`${file()}-wal`).size;
  const PAGES_1000 = 1000 * 4096;

  /** Rows of `users` in the database file alone, without its WAL: what has been checkpointed. */
  const inMainFile = () => {
    const copy = join(t.dataDir, 'copy.db');
    copyFileSync(file(), copy);
    const c = new SQLite(copy, { readonly: true });
    try {
      return (c.prepare('SELECT count(*) AS n FROM users').get() as { n: number }).n;
    } catch {
      return 0; // not even the schema is in the file yet
    } finally {
      c.close();
    }
  };

  it('the connection never checkpoints; once the WAL reaches 1,000 pages the worker copies committed pages into the file', async () => {
    expect(db.sqlite!.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    const insert = db.sqlite!.prepare(
      "INSERT INTO users (id, role, status, balance_micros, held_micros, created_at, updated_at) VALUES (?, 'user', 'active', 0, 0, 0, 0)",
    );
    for (let i = 0; i < 20; i++) insert.run(`u${i}`);
    // A small WAL is left as it is: no thread is started for it, nothing is copied.
    expect(walBytes()).toBeLessThan(PAGES_1000);
    await sleep(600);
    expect(inMainFile()).toBe(0);
    // The connection's commits fill the WAL; past 1,000 pages the worker starts and copies them.
    let n = 20;
    while (walBytes() < PAGES_1000) insert.run(`u${n++}`);
    const until = Date.now() + 5_000;
    while (inMainFile() < n && Date.now() < until) await sleep(50);
    expect(inMainFile()).toBe(n);
  });

  it('rewinds the WAL under sustained writes instead of growing it for as long as they last', async () => {
    const path = join(t.dataDir, 'busy.db');
    const conn = new SQLite(path);
    conn.pragma('journal_mode = WAL');
    conn.pragma('synchronous = NORMAL');
    conn.exec('CREATE TABLE t (v TEXT)');
    conn.exec('CREATE INDEX t_v ON t (v)');
    const cp = new Checkpointer(conn, path, 25, 0, 64);
    const kysely = new Kysely<any>({ dialect: new SqliteDialect({ database: conn }) });
    const commits = new SqliteGroupCommit(conn, kysely);
    commits.setAfterCommit(() => cp.betweenTransactions());
    const insert = conn.prepare('INSERT INTO t (v) VALUES (?)');
    const row = (n: number) => `${(n * 7919) % 100_003}`.padStart(300, 'x');
    let rows = 0;
    // As under load: clients take a hold (runs at once, in the open transaction) and settle (answered
    // after its COMMIT), and take their next hold the moment the settle is answered. A transaction
    // is open nearly all the time, and the worker's checkpoint is always behind. A count of rows, not
    // a time: a slow machine takes longer, it does not write less.
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (rows < 60_000) {
          await commits.run(() => insert.run(row(rows++)), false);
          await commits.run(() => insert.run(row(rows++)), true);
        }
      }),
    );
    const wal = statSync(`${path}-wal`).size;
    const db = statSync(path).size;
    expect(rows).toBeGreaterThanOrEqual(60_000);
    expect(cp.rewinds).toBeGreaterThan(0);
    // Rewound, the WAL holds what a few checkpoint intervals wrote, not everything since the start.
    // (Measured: 0.8-1.2 times the database file; 15 times, 620 MB, without the rewind.)
    expect(wal).toBeLessThan(4 * db);
    await cp.close();
    await kysely.destroy();
  }, 60_000);

  it('gives checkpoints back to the connection when the worker fails', async () => {
    const conn = new SQLite(join(t.dataDir, 'other.db'));
    conn.pragma('journal_mode = WAL');
    // The worker cannot open this path: it dies, and the connection checkpoints by itself again.
    const cp = new Checkpointer(conn, join(t.dataDir, 'missing', 'dir', 'x.db'), 250, 0);
    expect(conn.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    const until = Date.now() + 5_000;
    while (conn.pragma('wal_autocheckpoint', { simple: true }) === 0 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 20));
    expect(conn.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    await cp.close();
    conn.close();
  });

  it('starts the worker only when the WAL reaches its start size; closing before that hands checkpoints back', async () => {
    const path = join(t.dataDir, 'lazy.db');
    const conn = new SQLite(path);
    conn.pragma('journal_mode = WAL');
    conn.exec('CREATE TABLE t (v TEXT)');
    const cp = new Checkpointer(conn, path, 20, 64 * 1024);
    expect(conn.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    await sleep(100);
    expect(cp.running).toBe(false);
    const insert = conn.prepare('INSERT INTO t (v) VALUES (?)');
    while (statSync(`${path}-wal`).size < 64 * 1024) insert.run('x'.repeat(500));
    const until = Date.now() + 5_000;
    while (!cp.running && Date.now() < until) await sleep(10);
    expect(cp.running).toBe(true);
    await cp.close();
    expect(cp.running).toBe(false);
    expect(conn.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);

    // Closed while still waiting: no thread was ever started, and the connection checkpoints again.
    const idle = new Checkpointer(conn, path, 20, 1024 * 1024 * 1024);
    expect(conn.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    await idle.close();
    expect(idle.running).toBe(false);
    expect(conn.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    conn.close();
  });
});
