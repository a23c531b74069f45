import type { FastifyBaseLogger } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import { newId } from '../lib/ids.js';

export interface Job {
  name: string;
  run(now: number): Promise<unknown>;
}

/**
 * In-process scheduled work that is safe on several instances: before a job runs, the instance
 * takes the job's lease row (one conditional upsert); while the lease is held (one interval),
 * no other instance runs that job.
 */
export class Scheduler {
  readonly holder = newId('inst');
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly jobs: Job[],
    private readonly intervalMs: number,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Take the lease of `name` until now + ttl; false while another holder's lease is live. */
  async lease(name: string, now: number, ttlMs: number): Promise<boolean> {
    const r = await this.db
      .insertInto('job_leases')
      .values({ name, holder: this.holder, expires_at: now + ttlMs })
      .onConflict((oc) =>
        oc
          .column('name')
          .doUpdateSet({ holder: this.holder, expires_at: now + ttlMs })
          .where((eb) =>
            eb.or([eb('job_leases.expires_at', '<=', now), eb('job_leases.holder', '=', this.holder)]),
          ),
      )
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  /** Run every job whose lease this instance gets. Returns the names of the jobs that ran. */
  async tick(now = Date.now(), leaseMs = Math.max(1_000, this.intervalMs - 500)): Promise<string[]> {
    const ran: string[] = [];
    for (const j of this.jobs) {
      try {
        if (!(await this.lease(j.name, now, leaseMs))) continue;
        await j.run(now);
        ran.push(j.name);
      } catch (err) {
        this.log.warn({ err, job: j.name }, 'scheduled job failed');
      }
    }
    return ran;
  }

  start(): void {
    if (this.intervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.tick()
        .then(() => undefined)
        .finally(() => {
          this.running = null;
        });
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
