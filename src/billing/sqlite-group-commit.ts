import type SQLite from 'better-sqlite3';
import type { Kysely } from 'kysely';

interface Op {
  fn: () => unknown;
  resolve: (v: any) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit for SQLite: the holds and settles that arrive in the same turn of the event loop
 * run in one IMMEDIATE transaction, each inside its own savepoint (a failing one rolls back alone),
 * and every caller is answered only after the COMMIT — so a settled charge is exactly as durable
 * as with a transaction per request, at a fraction of the commits. It runs while holding Kysely's
 * connection, so no Kysely transaction interleaves.
 */
export class SqliteGroupCommit {
  private queue: Op[] = [];
  private scheduled = false;
  private readonly begin: SQLite.Statement;
  private readonly commit: SQLite.Statement;
  private readonly rollback: SQLite.Statement;
  private readonly savepoint: SQLite.Statement;
  private readonly releaseSavepoint: SQLite.Statement;
  private readonly rollbackTo: SQLite.Statement;

  constructor(
    sqlite: SQLite.Database,
    private readonly kysely: Kysely<any>,
    private readonly maxBatch = 256,
  ) {
    // IMMEDIATE: take the write lock at BEGIN, so processes sharing the file never deadlock on an upgrade.
    this.begin = sqlite.prepare('BEGIN IMMEDIATE');
    this.commit = sqlite.prepare('COMMIT');
    this.rollback = sqlite.prepare('ROLLBACK');
    this.savepoint = sqlite.prepare('SAVEPOINT op');
    this.releaseSavepoint = sqlite.prepare('RELEASE op');
    this.rollbackTo = sqlite.prepare('ROLLBACK TO op');
  }

  run<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const batch = this.queue.splice(0, this.maxBatch);
    if (this.queue.length) {
      this.scheduled = true;
      setImmediate(() => void this.flush());
    }
    if (!batch.length) return;
    try {
      await this.kysely.connection().execute(async () => this.runBatch(batch));
    } catch (err) {
      for (const op of batch) op.reject(err);
    }
  }

  private runBatch(batch: Op[]): void {
    const results: Array<{ ok: boolean; v: unknown }> = [];
    this.begin.run();
    try {
      for (const op of batch) {
        this.savepoint.run();
        try {
          results.push({ ok: true, v: op.fn() });
          this.releaseSavepoint.run();
        } catch (e) {
          this.rollbackTo.run();
          this.releaseSavepoint.run();
          results.push({ ok: false, v: e });
        }
      }
      this.commit.run();
    } catch (err) {
      try {
        this.rollback.run();
      } catch {
        /* already rolled back */
      }
      throw err;
    }
    batch.forEach((op, i) => {
      const r = results[i]!;
      if (r.ok) op.resolve(r.v);
      else op.reject(r.v);
    });
  }
}
