import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
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

  it('the connection never checkpoints; the worker copies committed pages into the file', async () => {
    expect(db.sqlite!.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    const insert = db.sqlite!.prepare(
      "INSERT INTO users (id, role, status, balance_micros, held_micros, created_at, updated_at) VALUES (?, 'user', 'active', 0, 0, 0, 0)",
    );
    for (let i = 0; i < 200; i++) insert.run(`u${i}`);
    // The connection's commits left them in the WAL; only the worker copies them into the file.
    const until = Date.now() + 5_000;
    while (inMainFile() < 200 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(inMainFile()).toBe(200);
  });

  it('gives checkpoints back to the connection when the worker fails', async () => {
    const conn = new SQLite(join(t.dataDir, 'other.db'));
    conn.pragma('journal_mode = WAL');
    // The worker cannot open this path: it dies, and the connection checkpoints by itself again.
    const cp = new Checkpointer(conn, join(t.dataDir, 'missing', 'dir', 'x.db'));
    expect(conn.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    const until = Date.now() + 5_000;
    while (conn.pragma('wal_autocheckpoint', { simple: true }) === 0 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 20));
    expect(conn.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    await cp.close();
    conn.close();
  });
});
