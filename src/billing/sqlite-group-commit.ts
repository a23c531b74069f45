import type SQLite from 'better-sqlite3';
import type { Kysely } from 'kysely';

interface Op {
  fn: () => unknown;
  /** Already answered: a hold that ran at once. Every other operation is answered after its COMMIT. */
  answered: boolean;
  value?: unknown;
  resolve: (v: any) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit for SQLite: one IMMEDIATE transaction per turn of the event loop for every hold and
 * settle of that turn, each in a savepoint of its own so that one that throws is undone alone.
 *
 * - A settle (durable) is queued. At the end of the turn (setImmediate) the queued settles run back
 *   to back, the transaction commits, and only then is each answered: a settled charge is exactly
 *   as durable as with a transaction per request. Running them in one tight loop, rather than each
 *   as it arrives between other requests' work, keeps SQLite's code and pages hot in the CPU's
 *   caches: the same statements cost about a third less.
 * - A hold runs at once, inside the turn's transaction (opened by it if need be), and is answered
 *   as soon as it ran: the write lock is held until the COMMIT at the end of the turn, so no other
 *   writer sees the balance without it; should the COMMIT fail, the batch is replayed (below); a
 *   process that dies before the COMMIT loses the hold together with the request it was for. A
 *   request does not wait for a commit before it goes upstream.
 *
 * Other statements on the connection (Kysely's) first commit the open transaction (`beforeForeign`,
 * wired to the connection's prepare), so nothing of theirs ever runs inside it; while a Kysely
 * transaction is open, operations wait for Kysely's connection and run as one batch after it.
 */
export class SqliteGroupCommit {
  private open = false;
  private scheduled = false;
  /** Operations that ran in the open transaction. */
  private batch: Op[] = [];
  /** Operations waiting for the end of the turn (settles, and holds while Kysely has the connection). */
  private pending: Op[] = [];
  /** Transactions committed and operations in them (for tests and diagnostics). */
  readonly stats = { batches: 0, ops: 0 };
  private readonly begin: SQLite.Statement;
  private readonly commitStmt: SQLite.Statement;
  private readonly rollback: SQLite.Statement;
  private readonly savepoint: SQLite.Statement;
  private readonly release: SQLite.Statement;
  private readonly rollbackTo: SQLite.Statement;
  private readonly flushSoon = () => this.flush();

  constructor(
    private readonly sqlite: SQLite.Database,
    private readonly kysely: Kysely<any>,
    private readonly maxBatch = 512,
  ) {
    // IMMEDIATE: take the write lock at BEGIN, so processes sharing the file never deadlock on an upgrade.
    this.begin = sqlite.prepare('BEGIN IMMEDIATE');
    this.commitStmt = sqlite.prepare('COMMIT');
    this.rollback = sqlite.prepare('ROLLBACK');
    this.savepoint = sqlite.prepare('SAVEPOINT op');
    this.release = sqlite.prepare('RELEASE op');
    this.rollbackTo = sqlite.prepare('ROLLBACK TO op');
  }

  /** Run `fn` in this turn's transaction; answered after its COMMIT when `durable`, else once it ran. */
  run<T>(fn: () => T, durable = true): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const op: Op = { fn, answered: false, resolve, reject };
      if (durable || (!this.open && this.sqlite.inTransaction)) {
        // A settle, or a hold while a Kysely transaction is between two of its statements.
        this.pending.push(op);
      } else {
        if (!this.open) {
          this.begin.run(); // throws (rejecting this hold) when the database cannot start a transaction
          this.open = true;
        }
        if (this.step(op)) {
          this.batch.push(op);
          op.answered = true;
          resolve(op.value as T);
        }
        if (this.batch.length >= this.maxBatch) this.commit();
      }
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flushSoon);
      }
    });
  }

  /** Commit the open transaction now (before a statement that is not ours runs on the connection). */
  beforeForeign(): void {
    if (this.open) this.commit();
  }

  private flush(): void {
    this.scheduled = false;
    if (!this.open && this.pending.length > 0 && this.sqlite.inTransaction) {
      // A Kysely transaction is between two of its statements: wait for its connection.
      void this.flushAfterKysely();
      return;
    }
    this.runPending();
  }

  /** Run the queued operations (at most `maxBatch` per transaction) and commit. Synchronous. */
  private runPending(): void {
    do {
      const ops = this.pending.length <= this.maxBatch ? this.pending : this.pending.slice(0, this.maxBatch);
      this.pending = ops === this.pending ? [] : this.pending.slice(this.maxBatch);
      if (!this.open) {
        if (ops.length === 0) return;
        try {
          this.begin.run();
          this.open = true;
        } catch (err) {
          for (const op of ops) op.reject(err);
          continue;
        }
      }
      for (const op of ops) if (this.step(op)) this.batch.push(op);
      this.commit();
    } while (this.pending.length > 0);
  }

  /** Run one operation in a savepoint; false (and rejected) when it threw, its writes undone. */
  private step(op: Op): boolean {
    this.savepoint.run();
    try {
      op.value = op.fn();
      this.release.run();
      return true;
    } catch (err) {
      this.rollbackTo.run();
      this.release.run();
      op.reject(err);
      return false;
    }
  }

  private commit(): void {
    if (!this.open) return;
    this.open = false;
    const batch = this.batch;
    this.batch = [];
    try {
      this.commitStmt.run();
    } catch {
      // The COMMIT failed (a broken disk): nothing of the batch is written. Replay each operation,
      // in order, in a transaction of its own, so what can be written is.
      this.rollbackQuietly();
      for (const op of batch) this.runAlone(op);
      return;
    }
    this.stats.batches++;
    this.stats.ops += batch.length;
    for (const op of batch) if (!op.answered) op.resolve(op.value);
  }

  private async flushAfterKysely(): Promise<void> {
    // Operations that arrive while this waits are queued and run in the same batch.
    this.scheduled = true;
    await this.kysely
      .connection()
      .execute(async () => {
        this.scheduled = false;
        this.beforeForeign();
        this.runPending();
      })
      .catch((err: unknown) => {
        this.scheduled = false;
        const ops = this.pending;
        this.pending = [];
        for (const op of ops) op.reject(err);
      });
  }

  private runAlone(op: Op): void {
    let value: unknown;
    try {
      this.begin.run();
      value = op.fn();
      this.commitStmt.run();
    } catch (e) {
      this.rollbackQuietly();
      if (!op.answered) op.reject(e);
      return;
    }
    if (!op.answered) op.resolve(value);
  }

  private rollbackQuietly(): void {
    try {
      this.rollback.run();
    } catch {
      /* no transaction open */
    }
  }
}
