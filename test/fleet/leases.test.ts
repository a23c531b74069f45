import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrations.js';
import { LocalBus, RedisBus } from '../../src/fleet/bus.js';
import { Jobs } from '../../src/fleet/jobs.js';
import { DatabaseLeases, type LeaseProvider, RedisLeases } from '../../src/fleet/lock.js';
import { createTestDatabase, DATABASES, type TestDatabase } from '../helpers/db.js';

const REDIS = process.env.TEST_REDIS_URL;
const prefix = () => `gwz-test:${randomBytes(6).toString('hex')}:`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(DATABASES)('database leases (%s)', (kind) => {
  let tdb: TestDatabase;
  let db: ReturnType<typeof openDatabase>;
  beforeAll(async () => {
    tdb = await createTestDatabase(kind);
    const { parseDatabaseUrl } = await import('../../src/config/config.js');
    db = openDatabase(parseDatabaseUrl(tdb.url, tdb.dataDir, 5));
    await migrateToLatest(db.db, db.dialect);
  });
  afterAll(async () => {
    await db?.close();
    await tdb?.drop();
  });

  it('one holder at a time; renewal by the holder; takeover after expiry; release hands over', async () => {
    let now = 1_000_000;
    const a = new DatabaseLeases(db.db, 'a', () => now);
    const b = new DatabaseLeases(db.db, 'b', () => now);
    expect(await a.acquire('job', 1000)).toBe(true);
    expect(await b.acquire('job', 1000)).toBe(false);
    now += 900;
    expect(await a.acquire('job', 1000)).toBe(true); // renewed until now+1000
    now += 900;
    expect(await b.acquire('job', 1000)).toBe(false);
    now += 200; // a's lease expired: a died
    expect(await b.acquire('job', 1000)).toBe(true);
    expect(await a.acquire('job', 1000)).toBe(false);
    await b.release('job');
    expect(await a.acquire('job', 1000)).toBe(true);
    await b.release('job'); // not b's: changes nothing
    expect(await b.acquire('job', 1000)).toBe(false);
  });

  it('concurrent contenders: exactly one wins', async () => {
    const ps = Array.from({ length: 8 }, (_, i) => new DatabaseLeases(db.db, `c${i}`));
    const won = await Promise.all(ps.map((p) => p.acquire('race', 10_000)));
    expect(won.filter(Boolean)).toHaveLength(1);
  });

  it('Jobs: three instances, one runner per tick; another takes over when it stops', async () => {
    const runs: string[] = [];
    const jobsets = ['x', 'y', 'z'].map((name) => {
      const j = new Jobs(new DatabaseLeases(db.db, name), () => {});
      j.every('tick-job', 100, async () => void runs.push(name));
      return { name, j };
    });
    await sleep(650);
    const first = runs[0]!;
    expect(new Set(runs)).toEqual(new Set([first]));
    expect(runs.length).toBeGreaterThanOrEqual(4);
    const leader = jobsets.find((s) => s.name === first)!;
    await leader.j.stop(); // releases the lease: another instance runs from its next tick
    runs.length = 0;
    await sleep(400);
    expect(runs.length).toBeGreaterThan(0);
    expect(runs).not.toContain(first);
    expect(new Set(runs).size).toBe(1);
    for (const s of jobsets) await s.j.stop();
  });

  it('Jobs.tick: the lease holder runs each job in order with the given time; a failing job is reported and the others still run', async () => {
    const errors: string[] = [];
    const seen: Array<[string, number]> = [];
    const instance = (owner: string) => {
      const j = new Jobs(new DatabaseLeases(db.db, owner), (job) => errors.push(job));
      // Interval 0: never on a timer, only when ticked.
      j.every('t-first', 0, async (now) => void seen.push(['t-first', now]));
      j.every('t-fails', 0, async () => {
        throw new Error('boom');
      });
      j.every('t-last', 0, async (now) => void seen.push(['t-last', now]));
      return j;
    };
    const a = instance('ta');
    const b = instance('tb');
    expect(await a.tick(42)).toEqual(['t-first', 't-last']);
    expect(await b.tick(43)).toEqual([]); // a holds every lease
    expect(seen).toEqual([
      ['t-first', 42],
      ['t-last', 42],
    ]);
    expect(errors).toEqual(['t-fails']);
    await a.stop(); // hands the leases over
    expect(await b.tick(44)).toEqual(['t-first', 't-last']);
    expect(await a.tick(45)).toEqual([]); // a stopped instance runs nothing
    expect(seen.map((s) => s[1])).toEqual([42, 42, 44, 44]);
    expect(errors).toEqual(['t-fails', 't-fails']);
    await b.stop();
  });

  it('Jobs.stop waits for a running job; a tick waits for the turn in progress', async () => {
    const j = new Jobs(new DatabaseLeases(db.db, 'slow'), () => {});
    let release: (() => void) | null = null;
    let runs = 0;
    let finished = false;
    j.every('t-slow', 0, async () => {
      runs++;
      await new Promise<void>((r) => {
        release = r;
      });
      finished = true;
    });
    const first = j.tick();
    while (!release) await sleep(5);
    const second = j.tick(); // waits for the first turn, then runs again
    await sleep(50);
    expect(runs).toBe(1);
    (release as () => void)();
    release = null;
    expect(await first).toEqual(['t-slow']);
    while (!release) await sleep(5);
    expect(runs).toBe(2);
    let stopped = false;
    const stopping = j.stop().then(() => {
      stopped = true;
    });
    await sleep(50);
    expect(stopped).toBe(false);
    finished = false;
    (release as () => void)();
    await stopping;
    expect(finished).toBe(true);
    expect(await second).toEqual(['t-slow']);
  });
});

describe.skipIf(!REDIS)('redis leases and bus', () => {
  let r: Redis;
  beforeAll(() => {
    r = new Redis(REDIS!);
  });
  afterAll(async () => {
    await r?.quit();
  });

  it('lease: one holder, renewal, release; expiry frees it', async () => {
    const p = prefix();
    const a: LeaseProvider = new RedisLeases(r, p, 'a');
    const b: LeaseProvider = new RedisLeases(r, p, 'b');
    expect(await a.acquire('job', 300)).toBe(true);
    expect(await b.acquire('job', 300)).toBe(false);
    expect(await a.acquire('job', 300)).toBe(true);
    await b.release('job');
    expect(await b.acquire('job', 300)).toBe(false);
    await sleep(350);
    expect(await b.acquire('job', 300)).toBe(true);
    await b.release('job');
    expect(await a.acquire('job', 300)).toBe(true);
    await a.release('job');
  });

  it('bus: a message published by one instance reaches the others (and itself once)', async () => {
    const p = prefix();
    const a = new RedisBus(REDIS!, p, 'inst-a');
    const b = new RedisBus(REDIS!, p, 'inst-b');
    const other = new RedisBus(REDIS!, prefix(), 'inst-c'); // another deployment sharing the server
    const gotA: string[] = [];
    const gotB: string[] = [];
    const gotOther: string[] = [];
    a.subscribe('inv:key', (m) => gotA.push(m));
    b.subscribe('inv:key', (m) => gotB.push(m));
    other.subscribe('inv:key', (m) => gotOther.push(m));
    await Promise.all([a.ready(), b.ready(), other.ready()]);
    const t0 = performance.now();
    await a.publish('inv:key', 'key_1');
    while (gotB.length === 0 && performance.now() - t0 < 2000) await sleep(5);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(gotB).toEqual(['key_1']);
    await sleep(50);
    expect(gotA).toEqual(['key_1']); // delivered locally at once, not again from Redis
    expect(gotOther).toEqual([]);
    await Promise.all([a.close(), b.close(), other.close()]);
  });
});

describe('local bus', () => {
  it('delivers in-process; a failing handler does not stop the others', async () => {
    const errors: unknown[] = [];
    const bus = new LocalBus((e) => errors.push(e));
    const got: string[] = [];
    bus.subscribe('c', () => {
      throw new Error('boom');
    });
    bus.subscribe('c', (m) => got.push(m));
    await bus.publish('c', 'hello');
    await bus.publish('other', 'x');
    expect(got).toEqual(['hello']);
    expect(errors).toHaveLength(1);
  });
});

describe.each(DATABASES)('fallback leases (%s)', (kind) => {
  it('scheduled jobs keep one runner through the database while Redis is unreachable', async () => {
    const tdb = await createTestDatabase(kind);
    const { parseDatabaseUrl } = await import('../../src/config/config.js');
    const db = openDatabase(parseDatabaseUrl(tdb.url, tdb.dataDir, 5));
    await migrateToLatest(db.db, db.dialect);
    // A Redis that is not there: connection refused, no offline queue.
    const dead = new Redis('redis://127.0.0.1:1', {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      lazyConnect: true,
    });
    dead.on('error', () => {});
    const { FallbackLeases } = await import('../../src/fleet/lock.js');
    const fellBack: unknown[] = [];
    const mk = (owner: string) =>
      new FallbackLeases(new RedisLeases(dead, prefix(), owner), new DatabaseLeases(db.db, owner), (e) =>
        fellBack.push(e),
      );
    const a = mk('a');
    const b = mk('b');
    expect(await a.acquire('sweep', 5000)).toBe(true);
    expect(await b.acquire('sweep', 5000)).toBe(false);
    expect(fellBack.length).toBe(2);
    await a.release('sweep');
    expect(await b.acquire('sweep', 5000)).toBe(true);
    dead.disconnect();
    await db.close();
    await tdb.drop();
  });
});
