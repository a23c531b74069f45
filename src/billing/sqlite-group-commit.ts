import type SQLite from 'better-sqlite3';
import type { Kysely } from 'kysely';

interface Op {
  fn: () => unknown;
  /** Answered after COMMIT (a settle), or as soon as it ran (a hold). */
  durable: boolean;
  value?: unknown;
  resolve: (v: any) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit for SQLite. An operation runs at once, synchronously, inside the open batch
 * transaction (one IMMEDIATE transaction per turn of the event loop, committed by setImmediate),
 * each in a savepoint of its own so that one that throws is undone alone. A durable operation (the
 * settle) is answered only after the COMMIT, so a settled charge is exactly as durable as with a
 * transaction per request, at a fraction of the commits. A hold is answered as soon as it ran: the
 * write lock is held until the COMMIT, so no other writer sees the balance without it, and should
 * the COMMIT fail the batch is replayed (below); a process that dies before the COMMIT loses the
 * hold together with the request it was for. A batch of holds alone waits up to `holdWindowMs` for
 * a settle to share its COMMIT (at low load, a request's hold and settle then cost one commit).
 *
 * Other statements on the connection (Kysely's) first commit the open batch (`beforeForeign`, wired
 * to the connection's prepare), so nothing of theirs ever runs inside it; while a Kysely
 * transaction is open, operations wait for Kysely's connection and run as one batch after it.
 */
export class SqliteGroupCommit {
  private open = false;
  /** A COMMIT is due at the next setImmediate (a settle is waiting), else only the hold window's timer. */
  private soon = false;
  private timer: NodeJS.Timeout | null = null;
  private batch: Op[] = [];
  private queued: Op[] = [];
  private readonly begin: SQLite.Statement;
  private readonly commitStmt: SQLite.Statement;
  private readonly rollback: SQLite.Statement;
  private readonly savepoint: SQLite.Statement;
  private readonly release: SQLite.Statement;
  private readonly rollbackTo: SQLite.Statement;
  private readonly commitSoon = () => this.commit();

  constructor(
    private readonly sqlite: SQLite.Database,
    private readonly kysely: Kysely<any>,
    private readonly maxBatch = 512,
    private readonly holdWindowMs = 2,
  ) {
    // IMMEDIATE: take the write lock at BEGIN, so processes sharing the file never deadlock on an upgrade.
    this.begin = sqlite.prepare('BEGIN IMMEDIATE');
    this.commitStmt = sqlite.prepare('COMMIT');
    this.rollback = sqlite.prepare('ROLLBACK');
    this.savepoint = sqlite.prepare('SAVEPOINT op');
    this.release = sqlite.prepare('RELEASE op');
    this.rollbackTo = sqlite.prepare('ROLLBACK TO op');
  }

  /** Run `fn` in the batch; the promise settles after COMMIT when `durable`, else as soon as `fn` ran. */
  run<T>(fn: () => T, durable = true): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const op: Op = { fn, durable, resolve, reject };
      if (!this.open && this.sqlite.inTransaction) {
        // A Kysely transaction is between two of its statements: wait for its connection.
        this.queued.push(op);
        if (this.queued.length === 1) void this.runQueued();
        return;
      }
      if (!this.open) {
        this.begin.run();
        this.open = true;
        this.timer = setTimeout(this.commitSoon, this.holdWindowMs);
      }
      if (!this.step(op)) return;
      this.batch.push(op);
      if (!durable) resolve(op.value as T);
      else if (!this.soon) {
        this.soon = true;
        setImmediate(this.commitSoon);
      }
      if (this.batch.length >= this.maxBatch) this.commit();
    });
  }

  /** Commit the open batch now (before a statement that is not ours runs on the connection). */
  beforeForeign(): void {
    if (this.open) this.commit();
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
    this.soon = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
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
    for (const op of batch) if (op.durable) op.resolve(op.value);
  }

  private async runQueued(): Promise<void> {
    // Ops that arrive while this waits join `queued` and run in the same turn.
    await this.kysely
      .connection()
      .execute(async () => {
        const ops = this.queued;
        this.queued = [];
        try {
          this.beforeForeign();
          this.begin.run();
        } catch (err) {
          for (const op of ops) op.reject(err);
          return;
        }
        this.open = true;
        for (const op of ops) if (this.step(op)) this.batch.push(op);
        this.commit();
        for (const op of ops) if (!op.durable) op.resolve(op.value);
      })
      .catch((err: unknown) => {
        const ops = this.queued;
        this.queued = [];
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
      if (op.durable) op.reject(e);
      return;
    }
    if (op.durable) op.resolve(value);
  }

  private rollbackQuietly(): void {
    try {
      this.rollback.run();
    } catch {
      /* no transaction open */
    }
  }
}
