import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES, type TestDatabase } from '../helpers/db.js';
import { ADMIN_KEY } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';
import { type ChatResult, chat, getJson } from './helpers.js';
import { freePort } from './redis-server.js';

interface Instance {
  url: string;
  proc: ChildProcess;
  output: string[];
}

/** A real gateway process (`tsx src/server.ts`), configured by env like production. */
async function startProcess(env: Record<string, string>): Promise<Instance> {
  const port = await freePort();
  const output: string[] = [];
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: process.cwd(),
    env: { PATH: process.env.PATH ?? '', ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (d) => output.push(String(d)));
  proc.stderr!.on('data', (d) => output.push(String(d)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 40_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`gateway exited: ${output.join('')}`);
    try {
      const r = await fetch(`${url}/health`);
      if (r.status === 200) return { url, proc, output };
    } catch {}
    if (Date.now() > deadline) throw new Error(`gateway did not start: ${output.join('')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopProcess(i: Instance | undefined): Promise<void> {
  if (!i || i.proc.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => i.proc.kill('SIGKILL'), 10_000);
    i.proc.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    i.proc.kill('SIGTERM');
  });
}

const admin = (base: string, path: string, body: unknown) =>
  fetch(base + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

/** Run `n` calls with at most `parallel` at a time. */
async function spread<T>(n: number, parallel: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

describe.skipIf(!process.env.TEST_REDIS_URL).each(DATABASES)(
  'two gateway processes sharing Redis and the database (%s)',
  (kind) => {
    let up: MockProvider;
    let db: TestDatabase;
    let a: Instance | undefined;
    let b: Instance | undefined;

    beforeAll(async () => {
      up = await startMockProvider('openrouter');
      db = await createTestDatabase(kind);
      const env = {
        DATABASE_URL: db.url,
        DATA_DIR: db.dataDir,
        ADMIN_API_KEY: ADMIN_KEY,
        GATEWAY_SECRET: 'test-secret-0123456789abcdef0123456789',
        LOG_LEVEL: 'warn',
        CATALOG_SYNC_INTERVAL_MS: '0',
        GATEWAYZ_CONFIG: '',
        OPENROUTER_API_KEY: 'or-key',
        OPENROUTER_BASE_URL: up.url,
        REDIS_URL: process.env.TEST_REDIS_URL!,
        REDIS_PREFIX: `gwztest:${randomBytes(6).toString('hex')}:`,
        PROVIDER_MAX_CONCURRENCY: 'openrouter=4',
      };
      // one after the other: the first runs the migrations
      a = await startProcess(env);
      b = await startProcess(env);
    }, 90_000);
    afterAll(async () => {
      await Promise.all([stopProcess(a), stopProcess(b)]);
      await db?.drop();
      await up?.close();
    });

    const newUser = async () => {
      const r = await admin(a!.url, '/admin/create', {
        email: `m${Date.now()}${randomBytes(3).toString('hex')}@example.com`,
        credits: 10,
      });
      expect(r.status).toBe(200);
      return (await r.json()) as { user_id: string; api_key: string; key_id: string };
    };
    const both = () => [a!.url, b!.url];

    it('a key limited to 20 requests/min gets exactly 20 of 100 requests spread over both', async () => {
      const u = await newUser();
      expect(
        (await admin(b!.url, '/admin/rate-limits', { key_id: u.key_id, requests_per_minute: 20 })).status,
      ).toBe(200);
      // the user's plan may cap requests in flight; this test is about the per-minute count only
      expect(
        (await admin(a!.url, '/admin/rate-limits', { user_id: u.user_id, concurrency: 1000 })).status,
      ).toBe(200);
      up.reset();
      const rs = await spread(100, 10, (i) => chat(both()[i % 2]!, u.api_key));
      const ok = rs.filter((r) => r.status === 200);
      const limited = rs.filter((r) => r.status === 429);
      expect(ok.length).toBe(20);
      expect(limited.length).toBe(80);
      expect(new Set(limited.map((r) => r.body.error.type))).toEqual(
        new Set(['requests_per_minute_exceeded']),
      );
      // successes came from both instances, and only they reached (and were charged by) the provider
      expect(new Set(rs.flatMap((r, i) => (r.status === 200 ? [i % 2] : []))).size).toBe(2);
      expect(up.calls.length).toBe(20);
      const usage = await getJson(`${a!.url}/user/plan/usage`, u.api_key);
      expect(usage.body.today.requests.used).toBe(20);
    });

    it('a concurrency limit of 3 is never exceeded upstream, and no 429 follows an upstream call', async () => {
      const u = await newUser();
      expect((await admin(a!.url, '/admin/rate-limits', { key_id: u.key_id, concurrency: 3 })).status).toBe(
        200,
      );
      up.reset();
      up.options.latencyMs = 150;
      let rs: ChatResult[];
      try {
        rs = await spread(40, 12, (i) => chat(both()[i % 2]!, u.api_key));
      } finally {
        up.options.latencyMs = 0;
      }
      const ok = rs.filter((r) => r.status === 200).length;
      const limited = rs.filter((r) => r.status === 429);
      expect(up.maxInFlight).toBeLessThanOrEqual(3);
      expect(up.maxInFlight).toBeGreaterThanOrEqual(2);
      expect(ok).toBeGreaterThanOrEqual(3);
      expect(ok + limited.length).toBe(40);
      expect(limited.every((r) => r.body.error.type === 'concurrency_exceeded')).toBe(true);
      // every upstream call was answered 200 and charged; every 429 came before any upstream call
      expect(up.calls.length).toBe(ok);
      const usage = await getJson(`${b!.url}/user/plan/usage`, u.api_key);
      expect(usage.body.today.requests.used).toBe(ok);
    });

    it('PROVIDER_MAX_CONCURRENCY caps requests in flight to a provider across both instances', async () => {
      const u = await newUser();
      expect(
        (await admin(a!.url, '/admin/rate-limits', { user_id: u.user_id, concurrency: 1000 })).status,
      ).toBe(200);
      up.reset();
      up.options.latencyMs = 100;
      let rs: ChatResult[];
      try {
        rs = await spread(24, 12, (i) => chat(both()[i % 2]!, u.api_key));
      } finally {
        up.options.latencyMs = 0;
      }
      expect(rs.map((r) => r.status)).toEqual(Array(24).fill(200)); // they wait for a slot, none is refused
      expect(up.maxInFlight).toBe(4);
    });

    it('an admin change on one instance takes effect on the other within a second', async () => {
      const u = await newUser();
      expect(
        (await admin(a!.url, '/admin/rate-limits', { key_id: u.key_id, requests_per_minute: 1000 })).status,
      ).toBe(200);
      // both instances have the 1000/min limit cached
      for (const base of both()) {
        const r = await chat(base, u.api_key);
        expect(r.headers.get('x-ratelimit-limit-requests')).toBe('1000');
      }
      const t0 = Date.now();
      expect(
        (await admin(a!.url, '/admin/rate-limits', { key_id: u.key_id, requests_per_minute: 2 })).status,
      ).toBe(200);
      let r = await chat(b!.url, u.api_key);
      while (r.status !== 429 && Date.now() - t0 < 1500) {
        await new Promise((res) => setTimeout(res, 50));
        r = await chat(b!.url, u.api_key);
      }
      expect(r.status).toBe(429);
      expect(r.headers.get('x-ratelimit-limit-requests')).toBe('2');
      expect(Date.now() - t0).toBeLessThan(1000);
    });
  },
);
