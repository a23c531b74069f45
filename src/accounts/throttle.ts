import type { AuditLog } from '../audit/log.js';

interface Window {
  start: number;
  failures: number;
  /** Failures already written to the audit log for this window. */
  audited: number;
}

/**
 * Failed authentications per client IP: after `limit` failures within a minute the IP gets 429
 * until the minute is over. Failures are audited with their IP, aggregated so an attack cannot
 * flood the table: the first failure of an IP's window writes a row at once, the rest are written
 * as one summary row (`details.count`) when the window is swept or the gateway closes.
 */
export class AuthThrottle {
  private readonly windows = new Map<string, Window>();
  private timer: NodeJS.Timeout | null = null;
  private static readonly WINDOW_MS = 60_000;
  private static readonly MAX_IPS = 100_000;

  constructor(
    private readonly limit: number,
    private readonly audit: AuditLog,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.sweep(false), 15_000);
    this.timer.unref();
  }

  /** Seconds until the IP may try again, or 0 when it is not blocked. */
  blockedFor(ip: string): number {
    const w = this.windows.get(ip);
    if (!w) return 0;
    const left = w.start + AuthThrottle.WINDOW_MS - this.now();
    if (left <= 0) return 0;
    return w.failures >= this.limit ? Math.ceil(left / 1000) : 0;
  }

  fail(ip: string, userAgent: string | null, reason: string, resourceType = 'api_key'): void {
    const now = this.now();
    let w = this.windows.get(ip);
    if (w && now - w.start >= AuthThrottle.WINDOW_MS) {
      this.summarize(ip, w);
      w = undefined;
    }
    if (!w) {
      if (this.windows.size >= AuthThrottle.MAX_IPS) this.sweep(false);
      w = { start: now, failures: 0, audited: 0 };
      this.windows.set(ip, w);
    }
    w.failures++;
    if (w.audited === 0) {
      w.audited = 1;
      void this.audit.record({
        actor: 'anonymous',
        action: 'auth.failed',
        resourceType,
        details: { reason, count: 1 },
        ip,
        userAgent,
      });
    }
  }

  private summarize(ip: string, w: Window): void {
    const rest = w.failures - w.audited;
    if (rest <= 0) return;
    w.audited = w.failures;
    void this.audit.record({
      actor: 'anonymous',
      action: 'auth.failed',
      resourceType: 'credential',
      details: { reason: 'aggregated', count: rest, window_start: new Date(w.start).toISOString() },
      ip,
    });
  }

  /** Summarize and forget ended windows (all windows when `all`). */
  sweep(all: boolean): void {
    const now = this.now();
    for (const [ip, w] of this.windows) {
      if (all || now - w.start >= AuthThrottle.WINDOW_MS) {
        this.summarize(ip, w);
        if (!all || now - w.start >= AuthThrottle.WINDOW_MS) this.windows.delete(ip);
      }
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.sweep(true);
  }
}
