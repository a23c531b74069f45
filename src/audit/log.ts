import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import type { AuditStore, NewAuditRow } from './store.js';

export interface AuditEntry {
  /** The user the row is about (whose data changed), if any. */
  userId?: string | null;
  /** Who did it: `user:<id>`, `admin_key`, `system`, `anonymous`. */
  actor: string;
  action: string;
  resourceType?: string | null;
  resourceId?: string | null;
  details?: Record<string, unknown> | null;
  ip?: string | null;
  userAgent?: string | null;
}

/** What a feature needs of the audit log to record an admin action (AuditLog implements it). */
export interface AuditSink {
  recordRequest(
    request: FastifyRequest,
    e: Omit<AuditEntry, 'actor' | 'ip' | 'userAgent'> & { actor?: string },
  ): Promise<void>;
}

export interface AuditOptions {
  /** Rows held in memory at most; a full queue makes `record` wait for a flush (never drops). */
  capacity?: number;
  batchSize?: number;
  flushIntervalMs?: number;
  now?: () => number;
}

/**
 * The audit log's writer: rows go into a bounded in-memory queue and are inserted in batches
 * (every `flushIntervalMs` or `batchSize` rows). A full queue applies back-pressure; `close`
 * writes everything that is left, so a graceful shutdown loses nothing.
 */
export class AuditLog implements AuditSink {
  private queue: NewAuditRow[] = [];
  private flushing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly capacity: number;
  private readonly batchSize: number;
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(
    private readonly store: AuditStore,
    private readonly log: FastifyBaseLogger,
    opts: AuditOptions = {},
  ) {
    this.capacity = opts.capacity ?? 10_000;
    this.batchSize = opts.batchSize ?? 100;
    this.intervalMs = opts.flushIntervalMs ?? 200;
    this.now = opts.now ?? Date.now;
  }

  /** Queue one row. Resolves at once unless the queue is full, then after room is made. */
  async record(e: AuditEntry): Promise<void> {
    while (this.queue.length >= this.capacity) {
      await this.flush();
      // A failing database must not turn back-pressure into a busy loop.
      if (this.queue.length >= this.capacity) await new Promise((r) => setTimeout(r, 50));
    }
    this.queue.push({
      user_id: e.userId ?? null,
      actor: e.actor,
      action: e.action,
      resource_type: e.resourceType ?? null,
      resource_id: e.resourceId ?? null,
      details: e.details ? JSON.stringify(e.details) : null,
      ip: e.ip ?? null,
      user_agent: e.userAgent ? e.userAgent.slice(0, 300) : null,
      at: this.now(),
    });
    if (this.queue.length >= this.batchSize) void this.flush();
    else this.schedule();
  }

  /** Queue a row about a request: actor, IP and user agent are taken from it. */
  recordRequest(
    request: FastifyRequest,
    e: Omit<AuditEntry, 'actor' | 'ip' | 'userAgent'> & { actor?: string },
  ) {
    return this.record({
      ...e,
      actor: e.actor ?? actorOf(request),
      ip: request.ip,
      userAgent: typeof request.headers['user-agent'] === 'string' ? request.headers['user-agent'] : null,
    });
  }

  pending(): number {
    return this.queue.length;
  }

  /** Write what is queued now (one batch at a time); resolves when the queue is empty or a write failed. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.queue.length === 0) return Promise.resolve();
    this.flushing = (async () => {
      try {
        while (this.queue.length) {
          const batch = this.queue.slice(0, this.batchSize);
          await this.store.insertMany(batch);
          this.queue.splice(0, batch.length);
        }
      } catch (err) {
        // Rows stay queued and are retried at the next flush.
        this.log.error({ err }, 'audit log write failed');
        if (!this.closed) this.schedule(1000);
      } finally {
        this.flushing = null;
      }
    })();
    return this.flushing;
  }

  private schedule(ms = this.intervalMs): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, ms);
    this.timer.unref();
  }

  /** Stop the timer and write everything left (retrying a failed write a few times). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (let i = 0; i < 5 && (this.queue.length || this.flushing); i++) {
      await this.flush();
      if (this.queue.length) await new Promise((r) => setTimeout(r, 50 * (i + 1)));
    }
    if (this.queue.length)
      this.log.error({ lost: this.queue.length }, 'audit rows could not be written at shutdown');
  }
}

export function actorOf(request: FastifyRequest): string {
  const p = request.principal;
  if (!p) return 'anonymous';
  if (p.kind === 'admin') return 'admin_key';
  return `user:${p.userId}`;
}
