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
 * settle of that turn; one that throws is undone alone (below).
 *
 * - A settle (durable) is queued. At the end of the turn (setImmediate) the queued settles run back
 *   to back, the transaction commits, and only then is each answered: a settled charge is exactly
 *   as durable as with a transaction per request. Running them in one tight loop, rather than each
 *   as it arrives between other requests' work, keeps SQLite's code and pages hot in the CPU's
 *   caches: the same statements cost about a third less.
 * - A hold runs at once, inside the turn's transaction (opened by it if need be), and is answered
 *   as soon as it ran: the write lock is held until the COMMIT at the end of the turn (when only
 *   holds ran, until the next settle's turn or at most `holdOpenMs`: see `flush`), so no other
 *   writer sees the balance without it; should the COMMIT fail, the batch is replayed (below); a
 *   process that dies before the COMMIT loses the hold together with the request it was for. A
 *   request does not wait for a commit before it goes upstream.
 *
 * Operations run without a savepoint each (a savepoint per operation journals every page it touches
 * again: ~15% of SQLite's cost per request). The transaction opens one savepoint, `batch`, at BEGIN.
 * When an operation throws, everything since BEGIN is rolled back to `batch` (the write lock stays
 * held, so nothing else can have written) and the operations that had run are run again, each in a
 * savepoint of its own: from the same state in the same order they do the same, so holds already
 * answered stay true. Then the one that threw runs again alone in its savepoint, and is undone alone.
 *
 * Other statements on the connection (Kysely's) first commit the open transaction (`beforeForeign`,
 * wired to the connection's prepare), so nothing of theirs ever runs inside it; while a Kysely
 * transaction is open, operations wait for Kysely's connection and run as one batch after it.
 */
export class SqliteGroupCommit {
  private open = false;
  private scheduled = false;
  /** Commits a transaction in which only holds ran (see `flush`). */
  private holdTimer: NodeJS.Timeout | null = null;
  private readonly commitHolds = () => {
    this.holdTimer = null;
    if (this.open && this.pending.length === 0) this.commit();
  };
  /** Operations that ran in the open transaction. */
  private batch: Op[] = [];
  /** Operations waiting for the end of the turn (settles, and holds while Kysely has the connection). */
  private pending: Op[] = [];
  /** Transactions committed and operations in them (for tests and diagnostics). */
  readonly stats = { batches: 0, ops: 0 };
  private readonly begin: SQLite.Statement;
  private readonly batchSavepoint: SQLite.Statement;
  private readonly rollbackToBatch: SQLite.Statement;
  private readonly commitStmt: SQLite.Statement;
  private readonly rollback: SQLite.Statement;
  private readonly savepoint: SQLite.Statement;
  private readonly release: SQLite.Statement;
  private readonly rollbackTo: SQLite.Statement;
  private readonly flushSoon = () => this.flush();
  private afterCommit: (() => void) | undefined;

  constructor(
    private readonly sqlite: SQLite.Database,
    private readonly kysely: Kysely<any>,
    private readonly maxBatch = 512,
    /** At most this long a transaction in which only holds ran stays open (see `flush`). */
    private readonly holdOpenMs = 5,
  ) {
    // IMMEDIATE: take the write lock at BEGIN, so processes sharing the file never deadlock on an upgrade.
    this.begin = sqlite.prepare('BEGIN IMMEDIATE');
    this.batchSavepoint = sqlite.prepare('SAVEPOINT batch');
    this.rollbackToBatch = sqlite.prepare('ROLLBACK TO batch');
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
        if (!this.open) this.openTransaction(); // throws (rejecting this hold) when it cannot start one
        if (this.step(op)) {
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

  /** True unless a transaction that is not ours (Kysely's) is open on the connection, between two of its statements. */
  connectionIsOurs(): boolean {
    return this.open || !this.sqlite.inTransaction;
  }

  /** Commit the open transaction now (before a statement that is not ours runs on the connection). */
  beforeForeign(): void {
    if (this.open) this.commit();
  }

  private flush(): void {
    this.scheduled = false;
    if (this.open && this.pending.length === 0) {
      // Only holds ran, and their requests are on their way upstream. A COMMIT now would be paid
      // before they leave (undici writes a request to an idle keep-alive socket in this same check
      // phase, after this callback), and the request's settle will need a COMMIT of its own soon
      // after. So the transaction stays open: the next settle's turn commits it with that settle (one
      // COMMIT for a request's hold and settle), or the timer does, `holdOpenMs` after the first hold
      // that waits, whichever comes first. Nobody waits for it: a hold is answered once it ran.
      if (!this.holdTimer) {
        this.holdTimer = setTimeout(this.commitHolds, this.holdOpenMs);
        this.holdTimer.unref();
      }
      return;
    }
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
          this.openTransaction();
        } catch (err) {
          for (const op of ops) op.reject(err);
          continue;
        }
      }
      for (const op of ops) {
        if (this.open) this.step(op);
        else this.runAlone(op); // the transaction was lost (see recover)
      }
      this.commit();
    } while (this.pending.length > 0);
  }

  private openTransaction(): void {
    this.begin.run();
    try {
      this.batchSavepoint.run();
    } catch (err) {
      this.rollbackQuietly();
      throw err;
    }
    this.open = true;
  }

  /** Run one operation in the open transaction; false (and rejected) when it threw, its writes undone. */
  private step(op: Op): boolean {
    try {
      op.value = op.fn();
    } catch {
      return this.recover(op);
    }
    this.batch.push(op);
    return true;
  }

  /**
   * `failed` threw, its writes (some of its statements may have run) mixed with the batch's: undo
   * everything back to BEGIN, run the batch again with a savepoint per operation, then `failed` alone.
   */
  private recover(failed: Op): boolean {
    const ran = this.batch;
    this.batch = [];
    if (this.undoToBatch()) {
      try {
        for (const op of ran) this.inSavepoint(op);
        return this.inSavepoint(failed);
      } catch {
        // A savepoint statement itself failed: give up on this transaction (below).
      }
    }
    // SQLite rolled the whole transaction back itself (I/O error, disk full), or the savepoints
    // failed: as after a failed COMMIT. The one that threw runs last, so it is answered with its
    // error if it throws again.
    this.open = false;
    this.batch = [];
    this.replayAlone([...ran, failed]);
    return false;
  }

  /** Roll back to the `batch` savepoint; false when there is no transaction left to roll back in. */
  private undoToBatch(): boolean {
    if (!this.sqlite.inTransaction) return false;
    try {
      this.rollbackToBatch.run();
      return true;
    } catch {
      return false;
    }
  }

  /** Run an operation in a savepoint of its own (the slow path after a failure). */
  private inSavepoint(op: Op): boolean {
    this.savepoint.run();
    try {
      const value = op.fn();
      if (!op.answered) op.value = value;
      this.release.run();
      this.batch.push(op);
      return true;
    } catch (err) {
      this.rollbackTo.run();
      this.release.run();
      // An answered hold that cannot be written again is lost with its request's hold, as after a
      // failed COMMIT (its settle then finds no hold to release).
      if (!op.answered) op.reject(err);
      return false;
    }
  }

  private commit(): void {
    if (!this.open) return;
    this.open = false;
    if (this.holdTimer) {
      clearTimeout(this.holdTimer);
      this.holdTimer = null;
    }
    const batch = this.batch;
    this.batch = [];
    try {
      this.commitStmt.run();
    } catch {
      this.replayAlone(batch); // the COMMIT failed (a broken disk)
      return;
    }
    this.stats.batches++;
    this.stats.ops += batch.length;
    for (const op of batch) if (!op.answered) op.resolve(op.value);
    // Under load the next transaction begins before any timer or immediate could find the
    // connection idle: this is where the checkpointer can rewind the WAL (src/db/checkpointer.ts).
    this.afterCommit?.();
  }

  /** Called after each COMMIT, with no transaction open (the checkpointer's `betweenTransactions`). */
  setAfterCommit(fn: (() => void) | undefined): void {
    this.afterCommit = fn;
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

  /**
   * Nothing of the open transaction is written (its COMMIT failed, or SQLite rolled it back): run
   * each operation again, in order, in a transaction of its own, so what can be written is.
   */
  private replayAlone(ops: Op[]): void {
    this.rollbackQuietly();
    for (const op of ops) this.runAlone(op);
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
