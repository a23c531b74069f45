import type { LeaseProvider } from './lock.js';

export interface JobOptions {
  /** Run (or try to) right away instead of after the first interval. */
  runNow?: boolean;
  /** What instances that do not hold the lease do on each tick (e.g. re-read what the leader wrote). */
  follower?: () => Promise<void>;
}

interface Job {
  name: string;
  timer: NodeJS.Timeout;
  running: Promise<void> | null;
}

/**
 * Scheduled jobs with one runner per job across the fleet: each tick, an instance renews or takes the
 * job's lease (Redis key or database row) and runs the job only when it holds it. The lease lasts
 * two intervals plus a second, so a dead runner is replaced within that time, and a live one keeps
 * the job (no flapping between instances).
 */
export class Jobs {
  private readonly jobs: Job[] = [];
  private stopped = false;

  constructor(
    private readonly leases: LeaseProvider,
    private readonly onError: (job: string, err: unknown) => void,
  ) {}

  every(name: string, intervalMs: number, run: () => Promise<void>, opts: JobOptions = {}): void {
    const ttl = intervalMs * 2 + 1000;
    const job: Job = { name, timer: undefined as unknown as NodeJS.Timeout, running: null };
    const tick = () => {
      if (this.stopped || job.running) return;
      job.running = (async () => {
        try {
          if (await this.leases.acquire(name, ttl)) await run();
          else if (opts.follower) await opts.follower();
        } catch (err) {
          this.onError(name, err);
        } finally {
          job.running = null;
        }
      })();
    };
    job.timer = setInterval(tick, intervalMs);
    job.timer.unref();
    this.jobs.push(job);
    if (opts.runNow) tick();
  }

  /** Stop scheduling, wait for running jobs, and hand the leases over. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const j of this.jobs) clearInterval(j.timer);
    await Promise.all(this.jobs.map((j) => j.running));
    await Promise.all(this.jobs.map((j) => this.leases.release(j.name).catch(() => {})));
  }
}
