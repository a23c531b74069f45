/**
 * Window arithmetic shared by both backends.
 *
 * - minute and hour are sliding windows kept as 60 sub-buckets (1 s and 1 min). A window counts
 *   the current bucket and the 60 before it, so it always covers at least the last full minute
 *   (hour): the limit is never exceeded in any sliding window, and a unit frees up at most one
 *   bucket (1/60 of the window) later than an exact log would free it.
 * - day and month are calendar quotas (UTC): they reset at 00:00 UTC and on the 1st of the month.
 */
export type WindowName = 'minute' | 'hour' | 'day' | 'month';
export const WINDOWS: readonly WindowName[] = ['minute', 'hour', 'day', 'month'];

const SLOTS = 60;
const DAY = 86_400_000;

/** One counter of one subject and window, as a backend checks it. */
export interface CounterSpec {
  key: string;
  /** Bucket (sliding) or period (calendar) id of `now`. */
  cur: number;
  /** Buckets with an id below this no longer count. */
  start: number;
  amount: number;
  limit: number;
  /** Length of one bucket (sliding); 0 for a calendar window. */
  bucketMs: number;
  /** End of the current period (calendar windows). */
  periodEnd: number;
  /** Lifetime of the stored counter. */
  ttlMs: number;
}

export interface WindowPosition {
  cur: number;
  start: number;
  bucketMs: number;
  periodEnd: number;
  ttlMs: number;
}

export function position(w: WindowName, now: number): WindowPosition {
  switch (w) {
    case 'minute':
    case 'hour': {
      const bucketMs = w === 'minute' ? 1000 : 60_000;
      const cur = Math.floor(now / bucketMs);
      return { cur, start: cur - SLOTS, bucketMs, periodEnd: 0, ttlMs: (SLOTS + 2) * bucketMs };
    }
    case 'day': {
      const cur = Math.floor(now / DAY);
      const periodEnd = (cur + 1) * DAY;
      return { cur, start: cur, bucketMs: 0, periodEnd, ttlMs: periodEnd - now + 60_000 };
    }
    case 'month': {
      const d = new Date(now);
      const y = d.getUTCFullYear();
      const m = d.getUTCMonth();
      const periodEnd = Date.UTC(y, m + 1, 1);
      return { cur: y * 12 + m, start: y * 12 + m, bucketMs: 0, periodEnd, ttlMs: periodEnd - now + 60_000 };
    }
  }
}

/** Start of the current calendar period (for reports). */
export function periodStart(w: 'day' | 'month', now: number): number {
  if (w === 'day') return Math.floor(now / DAY) * DAY;
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

/**
 * ms until `need` units have left a window, given its live buckets; -1 when they never will
 * (the request alone is larger than the limit).
 */
export function retryAfterMs(
  spec: CounterSpec,
  now: number,
  buckets: Array<[number, number]>,
  used: number,
): number {
  if (spec.amount > spec.limit) return -1;
  if (spec.bucketMs === 0) return Math.max(0, spec.periodEnd - now);
  const need = used + spec.amount - spec.limit;
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const slots = spec.cur - spec.start;
  let freed = 0;
  for (const [b, c] of sorted) {
    freed += c;
    if (freed >= need) return Math.max(0, (b + slots + 1) * spec.bucketMs - now);
  }
  return (spec.cur + slots + 1) * spec.bucketMs - now;
}

/** ms until everything counted now has left the window (OpenAI's `x-ratelimit-reset-*`). */
export function fullResetMs(spec: CounterSpec, now: number, buckets: Array<[number, number]>): number {
  if (spec.bucketMs === 0) return Math.max(0, spec.periodEnd - now);
  let newest = -1;
  for (const [b, c] of buckets) if (c > 0 && b > newest) newest = b;
  if (newest < 0) return 0;
  return Math.max(0, (newest + spec.cur - spec.start + 1) * spec.bucketMs - now);
}
