import type pg from 'pg';
import type { UsageRecord } from './store.js';

interface Op {
  op: Record<string, unknown>;
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
 * event loop goes to the server as ONE statement, `gwz_billing_batch` (migration 063), which runs
 * them in order, each undone alone should it fail, in one transaction. One round trip, one lock of
 * a user's row and one commit for the whole batch, where a statement per operation meant a commit
 * each, queued one after another on the same user's row (a WAL flush each: that capped one user at
 * a few hundred requests per second). Every operation is answered only after the COMMIT. While
 * `maxInFlight` batches are at the server, new operations wait and go out together in the next one.
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
  /** Batches sent and operations in them (for tests and diagnostics). */
  readonly stats = { batches: 0, ops: 0 };
  private readonly flushSoon = () => {
    this.scheduled = false;
    this.flush();
  };

  constructor(
    private readonly pool: pg.Pool,
    /** At most this many operations per batch (each is a subtransaction; PostgreSQL caches 64 per transaction). */
    private readonly maxBatch = 64,
    private readonly maxInFlight = 4,
  ) {}

  hold(
    id: string,
    userId: string,
    keyId: string | null,
    amount: number,
    requestId: string,
    now: number,
    ttlMs: number,
  ): Promise<boolean> {
    return this.run({
      k: 'h',
      id,
      user: userId,
      key: keyId,
      amount,
      req: requestId,
      at: now,
      exp: now + ttlMs,
    });
  }

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
      this.pending.push({ op, resolve, reject });
      if (!this.scheduled && this.inFlight < this.maxInFlight) {
        this.scheduled = true;
        setImmediate(this.flushSoon);
      }
    });
  }

  private flush(): void {
    while (this.pending.length > 0 && this.inFlight < this.maxInFlight) {
      if (this.alone > 0) {
        // Operations of a refused batch, each on its own.
        this.alone--;
        void this.send([this.pending.shift()!]);
        continue;
      }
      const ops = this.pending.length <= this.maxBatch ? this.pending : this.pending.slice(0, this.maxBatch);
      this.pending = ops === this.pending ? [] : this.pending.slice(this.maxBatch);
      void this.send(ops);
    }
  }

  private async send(ops: Op[]): Promise<void> {
    this.inFlight++;
    try {
      const r = await this.pool.query<{ r: Array<{ ok?: unknown; err?: string; code?: string }> }>({
        name: 'gwz_billing_batch_v1',
        text: 'SELECT gwz_billing_batch($1::jsonb) AS r',
        values: [JSON.stringify(ops.map((o) => o.op))],
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
      // operation's data it cannot take as jsonb, say a NUL character), send each operation alone, so
      // only that one fails; when the connection or the database failed, every operation fails.
      if (ops.length > 1 && refusedByServer(err)) {
        this.pending.unshift(...ops);
        this.alone += ops.length;
      } else for (const o of ops) o.reject(err);
    } finally {
      this.inFlight--;
      this.flush();
    }
  }
}

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
