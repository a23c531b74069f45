import type pg from 'pg';
import type { TakeHold } from './hold-leases.js';
import type { UsageRecord } from './store.js';

interface Op {
  op: Record<string, unknown>;
  user: string;
  resolve: (v: any) => void;
  reject: (e: unknown) => void;
}

/** A failed operation of a batch, with its SQLSTATE as `code` (as pg reports errors). */
export class BatchOpError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'BatchOpError';
  }
}

/**
 * The hold and the settle on PostgreSQL, group-committed: every hold and settle of one turn of the
 * event loop goes to the server as ONE statement, `gwz_billing_run` (migration 064), which runs them
 * in order in one transaction. Should one fail, the statement fails whole (nothing of it is written)
 * and each operation is sent again alone, in a block of its own that undoes and reports a failing
 * operation by itself (a block per operation is too slow for every batch). One round trip, one lock of
 * a user's row and one commit for the whole batch, where a statement per operation meant a commit
 * each, queued one after another on the same user's row (a WAL flush each: that capped one user at
 * a few hundred requests per second). Every operation is answered only after the COMMIT. While
 * `maxInFlight` batches are at the server, new operations wait and go out together in the next one.
 *
 * A user's operations are in at most one batch at the server at a time: two batches for the same
 * user would only queue on that user's row lock, one transaction waiting for the other's commit, and
 * the row's versions would pile up meanwhile (measured: one user, batches of 64, four at once: 400
 * operations/s; one at a time: 9,000). Operations of a user whose batch is out wait for the next one.
 *
 * Same effects as BillingStore's step-by-step version: trial credits are spent first, each bucket
 * touched gets its own ledger row, the hold is released and the usage record written.
 */
export class PostgresBillingFastPath {
  private pending: Op[] = [];
  private scheduled = false;
  private inFlight = 0;
  /** How many operations at the head of `pending` are to be sent one per statement. */
  private alone = 0;
  /** Users with operations in a batch at the server. */
  private readonly busy = new Set<string>();
  /** Batches sent and operations in them (for tests and diagnostics). */
  readonly stats = { batches: 0, ops: 0 };
  private readonly flushSoon = () => {
    this.scheduled = false;
    this.flush();
  };

  constructor(
    private readonly pool: pg.Pool,
    /** At most this many operations per batch. */
    private readonly maxBatch = 256,
    private readonly maxInFlight = 4,
  ) {}

  readonly hold: TakeHold = (id, userId, keyId, amount, requestId, now, ttlMs) =>
    this.run({
      k: 'h',
      id,
      user: userId,
      key: keyId,
      amount,
      req: requestId,
      at: now,
      exp: now + ttlMs,
    });

  settle(
    holdId: string | null,
    cost: number,
    usage: UsageRecord,
    keyId: string | null,
  ): Promise<number | null> {
    const what = `${usage.endpoint} ${usage.model} via ${usage.provider}`;
    return this.run({
      k: 's',
      user: usage.user_id,
      cost,
      hold: holdId,
      at: usage.created_at,
      req: usage.request_id,
      trial_what: `${what} (trial credits)`,
      what,
      spend_key: keyId,
      key: usage.key_id,
      endpoint: usage.endpoint,
      model: usage.model,
      provider: usage.provider,
      pt: usage.prompt_tokens,
      ct: usage.completion_tokens,
      cached: usage.cached_tokens,
      reasoning: usage.reasoning_tokens,
      cost_rec: usage.cost_micros,
      latency: usage.latency_ms,
      status: usage.status,
      stream: usage.stream,
      app: usage.app,
    });
  }

  private run<T>(op: Record<string, unknown>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ op, user: op.user as string, resolve, reject });
      if (!this.scheduled && this.inFlight < this.maxInFlight) {
        this.scheduled = true;
        setImmediate(this.flushSoon);
      }
    });
  }

  private flush(): void {
    while (this.pending.length > 0 && this.inFlight < this.maxInFlight) {
      if (this.alone > 0) {
        // Operations of a refused batch, each on its own, in order.
        if (this.busy.has(this.pending[0]!.user)) return;
        this.alone--;
        void this.send([this.pending.shift()!]);
        continue;
      }
      const ops = this.takeBatch();
      if (ops.length === 0) return; // every waiting operation's user has a batch out
      void this.send(ops);
    }
  }

  /**
   * The next batch: waiting operations of users with no batch out (at most `maxBatch`), ordered by
   * user and, for each user, as they came. Every batch (of every process) thus locks users' rows in
   * the same order, so two batches never deadlock: they would otherwise, when they hold two users'
   * operations in opposite orders, and one of them would fail an operation a second later.
   */
  private takeBatch(): Op[] {
    const { pending, busy } = this;
    let ops: Op[];
    if (pending.length <= this.maxBatch && busy.size === 0) {
      this.pending = [];
      ops = pending;
    } else {
      ops = [];
      const rest: Op[] = [];
      for (const o of pending) {
        if (ops.length < this.maxBatch && !busy.has(o.user)) ops.push(o);
        else rest.push(o);
      }
      // A user whose operations did not all fit is busy from now on, so the rest keep their order.
      this.pending = rest;
    }
    return ops.sort(byUser); // stable: each user's operations keep their order
  }

  private async send(ops: Op[]): Promise<void> {
    this.inFlight++;
    const users: string[] = [];
    for (const o of ops) {
      if (!this.busy.has(o.user)) {
        this.busy.add(o.user);
        users.push(o.user);
      }
    }
    try {
      // Batches run without a subtransaction per operation (migration 064); one operation alone runs
      // in a block of its own, which reports its failure with its SQLSTATE.
      const r = await this.pool.query<{ r: Array<{ ok?: unknown; err?: string; code?: string }> }>({
        name: 'gwz_billing_run_v1',
        text: 'SELECT gwz_billing_run($1::jsonb, $2::boolean) AS r',
        values: [JSON.stringify(ops.map((o) => o.op)), ops.length === 1],
      });
      const results = r.rows[0]!.r;
      this.stats.batches++;
      this.stats.ops += ops.length;
      ops.forEach((o, i) => {
        const x = results[i];
        if (!x) o.reject(new Error('billing batch: no result for an operation'));
        else if (x.err !== undefined) o.reject(new BatchOpError(x.err, x.code ?? ''));
        else o.resolve(x.ok);
      });
    } catch (err) {
      // The statement failed as a whole: nothing of it committed. When the server refused it (one
      // operation failed, or its data cannot be jsonb, say a NUL character), send each operation
      // alone, so only that one fails; when the connection or the database failed, every one fails.
      if (ops.length > 1 && refusedByServer(err)) {
        this.pending.unshift(...ops);
        this.alone += ops.length;
      } else for (const o of ops) o.reject(err);
    } finally {
      this.inFlight--;
      for (const u of users) this.busy.delete(u);
      this.flush();
    }
  }
}

const byUser = (a: Op, b: Op): number => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0);

/**
 * The server answered the statement with an error about the statement itself (pg's DatabaseError
 * carries the server's `severity`); not a lost connection (a socket error) or a server going away
 * (class 08, and 57P0x: shutting down, cannot connect now).
 */
function refusedByServer(err: unknown): boolean {
  const e = err as { code?: unknown; severity?: unknown };
  if (typeof e?.severity !== 'string' || typeof e.code !== 'string') return false;
  return !e.code.startsWith('08') && !e.code.startsWith('57P');
}
