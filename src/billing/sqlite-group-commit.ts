import type SQLite from 'better-sqlite3';
import type { Kysely } from 'kysely';

interface Op {
  fn: () => unknown;
  resolve: (v: any) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit for SQLite: the holds and settles that arrive in the same turn of the event loop
 * run in one IMMEDIATE transaction (should one of them throw, the batch is rolled back and each runs
 * in a transaction of its own), and every caller is answered only after the COMMIT — so a settled charge is exactly as durable
 * as with a transaction per request, at a fraction of the commits. It runs while holding Kysely's
 * connection, so no Kysely transaction interleaves.
 */
export class SqliteGroupCommit {
  private queue: Op[] = [];
  private scheduled = false;
  private readonly begin: SQLite.Statement;
  private readonly commit: SQLite.Statement;
  private readonly rollback: SQLite.Statement;

  constructor(
    sqlite: SQLite.Database,
    private readonly kysely: Kysely<any>,
    private readonly maxBatch = 256,
  ) {
    // IMMEDIATE: take the write lock at BEGIN, so processes sharing the file never deadlock on an upgrade.
    this.begin = sqlite.prepare('BEGIN IMMEDIATE');
    this.commit = sqlite.prepare('COMMIT');
    this.rollback = sqlite.prepare('ROLLBACK');
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
    // Optimistic: the whole batch in one transaction. An operation that throws (a bug or a broken
    // disk, never a refused hold) rolls the batch back, and each operation then runs on its own,
    // so one failure never takes the others with it.
    const results: unknown[] = [];
    this.begin.run();
    try {
      for (const op of batch) results.push(op.fn());
      this.commit.run();
    } catch {
      this.rollbackQuietly();
      for (const op of batch) this.runAlone(op);
      return;
    }
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i]);
  }

  private runAlone(op: Op): void {
    let value: unknown;
    try {
      this.begin.run();
      value = op.fn();
      this.commit.run();
    } catch (e) {
      this.rollbackQuietly();
      op.reject(e);
      return;
    }
    op.resolve(value);
  }

  private rollbackQuietly(): void {
    try {
      this.rollback.run();
    } catch {
      /* no transaction open */
    }
  }
}
