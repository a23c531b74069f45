import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';

/**
 * A named lease held by one instance at a time. The holder renews it by acquiring again before it
 * expires; when the holder dies, another instance takes over once the lease has expired.
 */
export interface LeaseProvider {
  readonly kind: 'redis' | 'database';
  /** True when this instance holds (or now took, or renewed) the lease for `ttlMs` from now. */
  acquire(name: string, ttlMs: number): Promise<boolean>;
  /** Give the lease up at once (graceful shutdown) so another instance takes over without waiting. */
  release(name: string): Promise<void>;
}

// Renew only our own lease; take it when free. Atomic in Redis.
const ACQUIRE = `
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if v then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export class RedisLeases implements LeaseProvider {
  readonly kind = 'redis' as const;
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly owner: string,
  ) {}

  async acquire(name: string, ttlMs: number): Promise<boolean> {
    const r = await this.redis.eval(ACQUIRE, 1, `${this.prefix}lease:${name}`, this.owner, String(ttlMs));
    return Number(r) === 1;
  }

  async release(name: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, `${this.prefix}lease:${name}`, this.owner);
  }
}

/** Leases as rows of `fleet_leases` (no Redis): one conditional statement decides the holder. */
export class DatabaseLeases implements LeaseProvider {
  readonly kind = 'database' as const;
  constructor(
    private readonly db: Kysely<Database>,
    private readonly owner: string,
    private readonly now: () => number = Date.now,
  ) {}

  async acquire(name: string, ttlMs: number): Promise<boolean> {
    const now = this.now();
    const ins = await this.db
      .insertInto('fleet_leases')
      .values({ name, owner: this.owner, expires_at: now + ttlMs })
      .onConflict((oc) => oc.column('name').doNothing())
      .executeTakeFirst();
    if (Number(ins.numInsertedOrUpdatedRows ?? 0) === 1) return true;
    const upd = await this.db
      .updateTable('fleet_leases')
      .set({ owner: this.owner, expires_at: now + ttlMs })
      .where('name', '=', name)
      .where((eb) => eb.or([eb('owner', '=', this.owner), eb('expires_at', '<', now)]))
      .executeTakeFirst();
    return Number(upd.numUpdatedRows) === 1;
  }

  async release(name: string): Promise<void> {
    await this.db
      .deleteFrom('fleet_leases')
      .where('name', '=', name)
      .where('owner', '=', this.owner)
      .execute();
  }
}

/**
 * Redis leases that fall back to database leases while Redis is unreachable, so scheduled jobs
 * (the hold sweeper above all) keep running during a Redis outage. Every job tolerates the brief
 * overlap a switch may cause (releasing an expired hold twice is a no-op).
 */
export class FallbackLeases implements LeaseProvider {
  readonly kind = 'redis' as const;
  constructor(
    private readonly primary: LeaseProvider,
    private readonly fallback: LeaseProvider,
    private readonly onFallback: (err: unknown) => void = () => {},
  ) {}

  async acquire(name: string, ttlMs: number): Promise<boolean> {
    try {
      return await this.primary.acquire(name, ttlMs);
    } catch (err) {
      this.onFallback(err);
      return this.fallback.acquire(name, ttlMs);
    }
  }

  async release(name: string): Promise<void> {
    await Promise.all([
      this.primary.release(name).catch(() => {}),
      this.fallback.release(name).catch(() => {}),
    ]);
  }
}
