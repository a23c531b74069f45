import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../db/database.js';
import type { Database } from '../db/schema.js';

export type GroupBy = 'model' | 'app';

export interface AggregateRow {
  key: string;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  users: number;
  errors: number;
  models: number;
}

/** Statuses that are neither a success nor the client's own doing count as errors. */
const NOT_AN_ERROR = ['ok', 'client_abort'];

/**
 * Aggregates over usage_records for one time window, grouped by model or app, in SQL (the
 * (model|app, created_at) indexes bound the rows read to the window). Median latency is
 * percentile_cont on PostgreSQL and a window-function middle-row average on SQLite: both give the
 * interpolated median (mean of the two middle values for an even count).
 */
export class RankingsStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async aggregate(by: GroupBy, from: number, to: number): Promise<AggregateRow[]> {
    const col = sql.ref(by);
    const r = await sql<AggregateRow>`
      select ${col} as key,
             count(*) as requests,
             coalesce(sum(prompt_tokens), 0) as prompt_tokens,
             coalesce(sum(completion_tokens), 0) as completion_tokens,
             count(distinct user_id) as users,
             sum(case when status in (${sql.join(NOT_AN_ERROR)}) then 0 else 1 end) as errors,
             count(distinct model) as models
      from usage_records
      where created_at >= ${from} and created_at < ${to} and ${col} is not null
      group by ${col}`.execute(this.db);
    return r.rows.map((x) => ({
      key: String(x.key),
      requests: Number(x.requests),
      prompt_tokens: Number(x.prompt_tokens),
      completion_tokens: Number(x.completion_tokens),
      users: Number(x.users),
      errors: Number(x.errors),
      models: Number(x.models),
    }));
  }

  /** Median latency (ms) of successful requests per group in the window. */
  async medianLatency(by: GroupBy, from: number, to: number): Promise<Map<string, number>> {
    const col = sql.ref(by);
    const q =
      this.dialect === 'postgres'
        ? sql<{ key: string; median: number }>`
            select ${col} as key, percentile_cont(0.5) within group (order by latency_ms) as median
            from usage_records
            where created_at >= ${from} and created_at < ${to} and status = 'ok' and ${col} is not null
            group by ${col}`
        : sql<{ key: string; median: number }>`
            with r as (
              select ${col} as key, latency_ms,
                     row_number() over (partition by ${col} order by latency_ms) as rn,
                     count(*) over (partition by ${col}) as cnt
              from usage_records
              where created_at >= ${from} and created_at < ${to} and status = 'ok' and ${col} is not null
            )
            select key, avg(latency_ms) as median from r
            where rn in ((cnt + 1) / 2, (cnt + 2) / 2)
            group by key`;
    const r = await q.execute(this.db);
    return new Map(r.rows.map((x) => [String(x.key), Number(x.median)]));
  }
}
