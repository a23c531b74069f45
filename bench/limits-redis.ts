/**
 * Redis time of the rate limiter's check script (src/limits/redis-backend.ts), per check:
 *   npx tsx bench/limits-redis.ts [--redis-url=redis://127.0.0.1:6379] [--n=20000]
 * 16 counters per check (user and key × requests and tokens × minute, hour, day, month), as a gateway
 * with every limit set sends; a refund of the token counters after each. Two states of the windows:
 * fresh (a few buckets each) and steady (every sliding bucket present: after an hour of traffic).
 * The client's CPU (ioredis encoding the call and decoding the reply) is this process's own.
 * Reads Redis' own command statistics (INFO commandstats), so it resets them: use a Redis of your own.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisBackend } from '../src/limits/redis-backend.js';
import { position, type WindowName } from '../src/limits/windows.js';
import { parseArgs } from './lib.js';

const a = parseArgs();
const url = a['redis-url'] ?? 'redis://127.0.0.1:6379';
if (!/^redis:\/\/(127\.0\.0\.1|localhost)[:/]/.test(url)) throw new Error('bench targets 127.0.0.1 only');
const N = Number(a.n ?? 20000);
const WINDOWS: WindowName[] = ['minute', 'hour', 'day', 'month'];
const raw = new Redis(url);

async function run(steady: boolean, settle: boolean): Promise<string> {
  const backend = new RedisBackend(url, () => {});
  await backend.ready();
  const prefix = `gwzbench:${randomBytes(6).toString('hex')}:`;
  const keys: Array<[string, WindowName, boolean]> = [];
  for (const subject of ['user', 'key'])
    for (const dim of ['requests', 'tokens'])
      for (const w of WINDOWS) keys.push([`${prefix}${subject}:${dim}:${w}`, w, dim === 'tokens']);
  const t0 = Date.now();
  if (steady) {
    for (const [k, w] of keys) {
      const p = position(w, t0);
      if (p.bucketMs === 0) continue;
      const fields: string[] = [];
      for (let b = p.start; b < p.cur; b++) fields.push(String(b), '5');
      await raw.hset(k, ...fields);
      await raw.pexpire(k, p.ttlMs);
    }
  }
  await raw.config('RESETSTAT');
  const cpu0 = process.cpuUsage();
  let now = t0;
  const inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < N; i++) {
    now += 0.2; // 5,000 checks per second
    const t = Math.floor(now);
    const counters = keys.map(([key, w]) => ({ key, amount: 1, limit: 1e12, ...position(w, t) }));
    const done = backend.check({ now: t, counters, leases: [] });
    const tokens = counters.filter((_, j) => keys[j]![2]);
    inFlight.push(
      settle
        ? done.then(() =>
            backend.settle(
              tokens.map((c) => ({ key: c.key, field: c.cur, delta: -1 })),
              [],
            ),
          )
        : done,
    );
    if (inFlight.length >= 32) await Promise.all(inFlight.splice(0));
  }
  await Promise.all(inFlight);
  const cpu = process.cpuUsage(cpu0);
  const stats = await raw.info('commandstats');
  const line = stats.split('\n').find((l) => l.startsWith('cmdstat_evalsha:')) ?? '';
  const usec = Number(/usec=(\d+)/.exec(line)?.[1] ?? Number.NaN);
  await backend.close();
  const keysLeft = await raw.keys(`${prefix}*`);
  if (keysLeft.length) await raw.del(...keysLeft);
  return `${(usec / N).toFixed(1)} (client ${((cpu.user + cpu.system) / N).toFixed(1)})`;
}

console.log(
  `limiter check script, 16 counters, ${N} checks per row: Redis µs per check (check / check + refund), and the client's (this process's) CPU µs`,
);
for (const steady of [false, true]) {
  const check = await run(steady, false);
  const both = await run(steady, true);
  console.log(
    `   ${steady ? 'steady (61 buckets per sliding window)' : 'fresh (a few buckets)'}: ${check} / ${both}`,
  );
}
raw.disconnect();
