import type { LeaseProvider } from './lock.js';

export interface JobOptions {
  /** Run (or try to) right away instead of after the first interval. */
  runNow?: boolean;
  /** What instances that do not hold the lease do on each tick (e.g. re-read what the leader wrote). */
  follower?: () => Promise<void>;
}

/** A job's work; `now` is the time it works with (epoch ms). */
export type JobRun = (now: number) => Promise<unknown>;

interface Job {
  name: string;
  ttlMs: number;
  run: JobRun;
  follower: (() => Promise<void>) | undefined;
  timer: NodeJS.Timeout | null;
  /** The turn in progress (true when this instance held the lease and the job succeeded). */
  running: Promise<boolean> | null;
}

/**
 * Scheduled jobs with one runner per job across the fleet: each tick, an instance renews or takes the
 * job's lease (Redis key or database row) and runs the job only when it holds it. The lease lasts
 * two intervals plus a second, so a dead runner is replaced within that time, and a live one keeps
 * the job (no flapping between instances). A failing job is reported to `onError` and never stops
 * the others; one instance never runs a job twice at once.
 */
export class Jobs {
  private readonly jobs: Job[] = [];
  private stopped = false;

  constructor(
    private readonly leases: LeaseProvider,
    private readonly onError: (job: string, err: unknown) => void,
  ) {}

  /** Run `run` every `intervalMs` on the lease holder; `intervalMs <= 0` registers it for `tick()` only. */
  every(name: string, intervalMs: number, run: JobRun, opts: JobOptions = {}): void {
    const job: Job = {
      name,
      ttlMs: Math.max(0, intervalMs) * 2 + 1000,
      run,
      follower: opts.follower,
      timer: null,
      running: null,
    };
    this.jobs.push(job);
    if (intervalMs <= 0) return;
    const tick = () => {
      if (!job.running) void this.turn(job, Date.now());
    };
    job.timer = setInterval(tick, intervalMs);
    job.timer.unref();
    if (opts.runNow) tick();
  }

  /**
   * One turn of every job now, in the order they were added (after a turn already in progress):
   * take or renew the lease, run when held. `now` is what the jobs work with (tests move it; leases
   * keep real time). Returns the names of the jobs this instance ran without error.
   */
  async tick(now = Date.now()): Promise<string[]> {
    const ran: string[] = [];
    for (const job of this.jobs) {
      while (job.running) await job.running;
      if (await this.turn(job, now)) ran.push(job.name);
    }
    return ran;
  }

  private turn(job: Job, now: number): Promise<boolean> {
    if (this.stopped) return Promise.resolve(false);
    const p = (async () => {
      try {
        if (await this.leases.acquire(job.name, job.ttlMs)) {
          await job.run(now);
          return true;
        }
        if (job.follower) await job.follower();
      } catch (err) {
        this.onError(job.name, err);
      }
      return false;
    })();
    job.running = p;
    void p.finally(() => {
      if (job.running === p) job.running = null;
    });
    return p;
  }

  /** Stop scheduling, wait for running jobs, and hand the leases over. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const j of this.jobs) if (j.timer) clearInterval(j.timer);
    await Promise.all(this.jobs.map((j) => j.running));
    await Promise.all(this.jobs.map((j) => this.leases.release(j.name).catch(() => {})));
  }
}
