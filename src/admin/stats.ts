import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/schema.js';
import { badRequest } from '../lib/errors.js';
import { microsToUsd } from '../lib/money.js';

export const DAY_MS = 86_400_000;
export const GROUPS = ['day', 'user', 'key', 'model', 'provider'] as const;
export type UsageGroup = (typeof GROUPS)[number];

const startOfUtcDay = (t: number) => Math.floor(t / DAY_MS) * DAY_MS;
const startOfUtcMonth = (t: number) => {
  const d = new Date(t);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
};

/** Error rows are written by the pipeline with status `error_<http status>`. */
const isError = sql<number>`case when status like 'error%' then 1 else 0 end`;

/**
 * Usage aggregates, always computed by the database (GROUP BY, COUNT, SUM) over indexed time
 * ranges of usage_records: never by loading rows into memory.
 */
export class UsageStats {
  constructor(private readonly db: Kysely<Database>) {}

  private async totals(from: number) {
    const r = await this.db
      .selectFrom('usage_records')
      .select((eb) => [
        eb.fn.countAll<number>().as('requests'),
        eb.fn.count<number>('user_id').distinct().as('active_users'),
        eb.fn
          .coalesce(eb.fn.sum<number>(sql`prompt_tokens + completion_tokens`), sql<number>`0`)
          .as('tokens'),
        eb.fn.coalesce(eb.fn.sum<number>('cost_micros'), sql<number>`0`).as('spend'),
        eb.fn.coalesce(eb.fn.sum<number>(isError), sql<number>`0`).as('errors'),
      ])
      .where('created_at', '>=', from)
      .executeTakeFirstOrThrow();
    const users = await this.db
      .selectFrom('users')
      .select((eb) => [
        eb.fn.countAll<number>().as('total'),
        eb.fn
          .coalesce(eb.fn.sum<number>(sql`case when created_at >= ${from} then 1 else 0 end`), sql<number>`0`)
          .as('new'),
      ])
      .where('status', '!=', 'deleted')
      .executeTakeFirstOrThrow();
    const requests = Number(r.requests);
    const errors = Number(r.errors);
    return {
      since: new Date(from).toISOString(),
      users: Number(users.total),
      new_users: Number(users.new),
      active_users: Number(r.active_users),
      requests,
      tokens: Number(r.tokens),
      spend_usd: microsToUsd(Number(r.spend)),
      errors,
      error_rate: requests ? errors / requests : 0,
    };
  }

  /** The last few minutes, for a live monitor: rate, error rate, latency percentiles, spend. */
  private async live(now: number, windowMs: number) {
    const from = now - windowMs;
    const r = await this.db
      .selectFrom('usage_records')
      .select((eb) => [
        eb.fn.countAll<number>().as('requests'),
        eb.fn.coalesce(eb.fn.sum<number>('cost_micros'), sql<number>`0`).as('spend'),
        eb.fn.coalesce(eb.fn.sum<number>(isError), sql<number>`0`).as('errors'),
      ])
      .where('created_at', '>=', from)
      .executeTakeFirstOrThrow();
    const requests = Number(r.requests);
    // A percentile as the value at its rank (both dialects; one indexed range, one row read back).
    const at = async (q: number) => {
      if (!requests) return null;
      const row = await this.db
        .selectFrom('usage_records')
        .select('latency_ms')
        .where('created_at', '>=', from)
        .orderBy('latency_ms')
        .limit(1)
        .offset(Math.min(requests - 1, Math.floor(q * requests)))
        .executeTakeFirst();
      return row ? Number(row.latency_ms) : null;
    };
    const [p50, p99] = await Promise.all([at(0.5), at(0.99)]);
    return {
      window_s: windowMs / 1000,
      requests,
      requests_per_second: Math.round((requests / (windowMs / 1000)) * 1000) / 1000,
      error_rate: requests ? Number(r.errors) / requests : 0,
      latency_p50_ms: p50,
      latency_p99_ms: p99,
      spend_usd: microsToUsd(Number(r.spend)),
    };
  }

  private async top(column: 'user_id' | 'model', from: number, limit: number) {
    const rows = await this.db
      .selectFrom('usage_records')
      .select((eb) => [
        eb.ref(column).as('name'),
        eb.fn.countAll<number>().as('requests'),
        eb.fn
          .coalesce(eb.fn.sum<number>(sql`prompt_tokens + completion_tokens`), sql<number>`0`)
          .as('tokens'),
        eb.fn.coalesce(eb.fn.sum<number>('cost_micros'), sql<number>`0`).as('spend'),
      ])
      .where('created_at', '>=', from)
      .groupBy(column)
      .orderBy(sql`count(*)`, 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      [column === 'user_id' ? 'user_id' : 'model']: r.name,
      requests: Number(r.requests),
      tokens: Number(r.tokens),
      spend_usd: microsToUsd(Number(r.spend)),
    }));
  }

  async monitor(now = Date.now(), topN = 10) {
    const day = startOfUtcDay(now);
    const month = startOfUtcMonth(now);
    const [live, today, thisMonth, topUsersToday, topModelsToday, topUsersMonth, topModelsMonth] =
      await Promise.all([
        this.live(now, 300_000),
        this.totals(day),
        this.totals(month),
        this.top('user_id', day, topN),
        this.top('model', day, topN),
        this.top('user_id', month, topN),
        this.top('model', month, topN),
      ]);
    return {
      generated_at: new Date(now).toISOString(),
      live,
      today: { ...today, top_users: topUsersToday, top_models: topModelsToday },
      month: { ...thisMonth, top_users: topUsersMonth, top_models: topModelsMonth },
    };
  }

  /** Usage over [from, to) grouped by one dimension; optionally one user's only. */
  async usage(q: { from: number; to: number; groupBy: UsageGroup; userId?: string; limit: number }) {
    const column = ({ user: 'user_id', key: 'key_id', model: 'model', provider: 'provider' } as const)[
      q.groupBy as Exclude<UsageGroup, 'day'>
    ];
    // A literal divisor (not a bound parameter) so PostgreSQL sees the same expression in GROUP BY.
    const key = sql<
      string | number | null
    >`${q.groupBy === 'day' ? sql.raw(`(created_at / ${DAY_MS})`) : sql.ref(column)}`;
    let query = this.db
      .selectFrom('usage_records')
      .select((eb) => [
        key.as('bucket'),
        eb.fn.countAll<number>().as('requests'),
        eb.fn.coalesce(eb.fn.sum<number>('prompt_tokens'), sql<number>`0`).as('prompt_tokens'),
        eb.fn.coalesce(eb.fn.sum<number>('completion_tokens'), sql<number>`0`).as('completion_tokens'),
        eb.fn.coalesce(eb.fn.sum<number>('cost_micros'), sql<number>`0`).as('spend'),
        eb.fn.coalesce(eb.fn.sum<number>(isError), sql<number>`0`).as('errors'),
      ])
      .where('created_at', '>=', q.from)
      .where('created_at', '<', q.to);
    if (q.userId) query = query.where('user_id', '=', q.userId);
    const rows = await query
      .groupBy(key)
      .orderBy(q.groupBy === 'day' ? key : sql`sum(cost_micros)`, q.groupBy === 'day' ? 'asc' : 'desc')
      .limit(q.limit)
      .execute();
    return rows.map((r) => ({
      [q.groupBy]:
        q.groupBy === 'day'
          ? new Date(Number(r.bucket) * DAY_MS).toISOString().slice(0, 10)
          : (r.bucket ?? null),
      requests: Number(r.requests),
      prompt_tokens: Number(r.prompt_tokens),
      completion_tokens: Number(r.completion_tokens),
      total_tokens: Number(r.prompt_tokens) + Number(r.completion_tokens),
      spend_usd: microsToUsd(Number(r.spend)),
      errors: Number(r.errors),
    }));
  }
}

/** `start_date`/`end_date` (ISO date or datetime; end date inclusive by day) → [from, to). */
export function dateRange(
  start?: string,
  end?: string,
  now = Date.now(),
  defaultDays = 30,
): { from: number; to: number } {
  const parse = (s: string, name: string, endOfDay: boolean) => {
    const t = Date.parse(s);
    if (Number.isNaN(t)) throw badRequest(`${name} is not a date (use YYYY-MM-DD or ISO 8601)`, name);
    return endOfDay && /^\d{4}-\d{2}-\d{2}$/.test(s) ? t + DAY_MS : t;
  };
  const to = end ? parse(end, 'end_date', true) : now + 1;
  const from = start ? parse(start, 'start_date', false) : startOfUtcDay(now) - (defaultDays - 1) * DAY_MS;
  return { from, to };
}
