import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import type pg from 'pg';
import type { DatabaseTarget } from '../config/config.js';
import { loadOptional } from '../lib/optional.js';
import { Checkpointer } from './checkpointer.js';
import type { Database } from './schema.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Db {
  db: Kysely<Database>;
  dialect: Dialect;
  /** The SQLite handle, for prepared hot-path statements run under Kysely's connection lock. */
  sqlite?: SQLite.Database;
  /** PostgreSQL: the pool Kysely uses, for the hot path's named prepared statements. */
  pgPool?: pg.Pool;
  /** SQLite: called with its SQL before each of Kysely's statements (the group commit commits its open batch first). */
  beforeStatement?: (hook: (sql: string) => void) => void;
  /** SQLite: the group commit calls it after each COMMIT (the checkpointer may rewind the WAL then). */
  betweenTransactions?: () => void;
  close(): Promise<void>;
}

const STATEMENT_CACHE = 500;

/**
 * Kysely prepares every query anew; preparing costs more than running a short statement. This
 * keeps prepared statements by SQL text (bounded). Kysely never iterates a statement while running
 * it again, so reuse is safe.
 */
function withStatementCache(sqlite: SQLite.Database) {
  const cache = new Map<string, SQLite.Statement>();
  let before: ((sql: string) => void) | null = null;
  return {
    setBefore(hook: (sql: string) => void) {
      before = hook;
    },
    prepare(sql: string): SQLite.Statement {
      before?.(sql);
      let stmt = cache.get(sql);
      if (!stmt) {
        stmt = sqlite.prepare(sql);
        if (cache.size >= STATEMENT_CACHE) cache.clear();
        cache.set(sql, stmt);
      }
      return stmt;
    },
    close: () => {
      before?.('');
      sqlite.close();
    },
  };
}

export function openDatabase(target: DatabaseTarget): Db {
  if (target.kind === 'sqlite') {
    if (target.path !== ':memory:') mkdirSync(dirname(target.path), { recursive: true });
    const sqlite = new SQLite(target.path);
    // A new file gets 1 KiB pages. Every COMMIT writes each page it changed to the WAL in full, and a
    // settle changes a dozen (a row and its index entries in several tables): with 4 KiB pages a
    // lone request's COMMIT wrote and checksummed ~48 KiB. Measured (one hold and settle per
    // COMMIT, 3 ms apart, two rounds): COMMIT mean 171/142 µs with 4 KiB pages, 105/93 with 1 KiB
    // (both with migration 066's indexes; 164/182 before it); at 16 per COMMIT no difference. An
    // existing file keeps its page size (changing it takes a VACUUM).
    if (sqlite.pragma('page_count', { simple: true }) === 0) sqlite.pragma('page_size = 1024');
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('foreign_keys = ON');
    // Savepoints (one per group-committed hold and settle) journal the pages they touch; in a temp
    // file that costs ~30 µs per request, in memory ~3 (freed at each RELEASE).
    sqlite.pragma('temp_store = MEMORY');
    const cached = withStatementCache(sqlite);
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: cached as never }) });
    const checkpointer = target.path === ':memory:' ? null : new Checkpointer(sqlite, target.path);
    return {
      db,
      dialect: 'sqlite',
      sqlite,
      beforeStatement: (hook) => cached.setBefore(hook),
      betweenTransactions: checkpointer ? () => checkpointer.betweenTransactions() : undefined,
      close: async () => {
        await checkpointer?.close();
        await db.destroy();
      },
    };
  }
  const pgm = loadOptional<typeof pg>('pg');
  // int8 (bigint) and numeric come back as strings from pg; our values fit in a double exactly.
  pgm.types.setTypeParser(20, (v) => Number(v));
  pgm.types.setTypeParser(1700, (v) => Number(v));
  const pool = new pgm.Pool({ connectionString: target.url, max: target.poolSize });
  // An idle connection the server closed (restart, failover) must not crash the process: the pool
  // drops it and the next query opens a new one.
  pool.on('error', (err) => {
    process.emitWarning(`PostgreSQL idle connection error: ${err.message}`);
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { db, dialect: 'postgres', pgPool: pool, close: () => db.destroy() };
}
