import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES, type TestDatabase } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';
import { adminCreateUser, type GatewayProcess, spawnGateway } from './process.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MODEL = 'openai/gpt-4o-mini';

/** Start a stream and resolve once the first content event arrived; `rest` reads it to the end. */
async function openStream(url: string, key: string) {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: MODEL,
      stream: true,
      messages: [{ role: 'user', content: 'tell me a long story' }],
    }),
  });
  expect(res.status).toBe(200);
  const requestId = res.headers.get('x-request-id')!;
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let text = '';
  while (!text.includes('"content"')) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value);
  }
  const rest = async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += dec.decode(value);
      }
      return { text, error: null as unknown };
    } catch (error) {
      return { text, error };
    }
  };
  return { requestId, rest };
}

// Each test starts real gateway processes (several seconds each on a busy machine).
const SLOW = 120_000;

describe.each(DATABASES)('process lifecycle (%s)', (kind) => {
  let or: MockProvider;
  let db: TestDatabase;
  let b: RunningGateway;
  const procs: GatewayProcess[] = [];
  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    db = await createTestDatabase(kind);
    // Instance B (in this process) runs the hold sweeper often.
    b = await startGateway(db, {
      OPENROUTER_API_KEY: 'or-key',
      OPENROUTER_BASE_URL: or.url,
      HOLD_SWEEP_INTERVAL_MS: '200',
    });
  });
  afterAll(async () => {
    for (const p of procs) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
    await b?.close();
    await db?.drop();
    await or?.close();
  });
  const env = () => ({ OPENROUTER_API_KEY: 'or-key', OPENROUTER_BASE_URL: or.url });

  const usageOf = (requestId: string) =>
    b.gw.db.db.selectFrom('usage_records').selectAll().where('request_id', '=', requestId).executeTakeFirst();

  it(
    'SIGTERM during an open stream: the stream completes, the charge is settled, exit code 0',
    async () => {
      const a = await spawnGateway(db, { ...env(), SHUTDOWN_GRACE_MS: '15000' });
      procs.push(a);
      const u = await adminCreateUser(a.url, 1);
      or.options.chunkIntervalMs = 150;
      or.options.chunks = 12;
      const s = await openStream(a.url, u.apiKey);
      a.proc.kill('SIGTERM');
      await sleep(100);
      // A kept-alive connection may still carry a request: it is served, and told to close.
      const late = await fetch(`${a.url}/ping`).catch(() => null);
      if (late) expect(late.headers.get('connection')).toBe('close');
      await sleep(400);
      // New connections are refused while the stream goes on.
      await expect(fetch(`${a.url}/ping`)).rejects.toThrow();
      const { text, error } = await s.rest();
      expect(error).toBeNull();
      expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
      expect((text.match(/"content"/g) ?? []).length).toBeGreaterThanOrEqual(12);
      const { code } = await a.exited;
      expect(code).toBe(0);
      const rec = await usageOf(s.requestId);
      expect(rec?.status).toBe('ok');
      expect(rec!.cost_micros).toBeGreaterThan(0);
      const bal = await b.gw.billing.balance(u.userId);
      expect(bal?.held_micros).toBe(0);
      expect(bal?.balance_micros).toBe(1_000_000 - rec!.cost_micros);
      expect(await b.gw.billing.ledgerSum(u.userId)).toBe(bal?.balance_micros);
    },
    SLOW,
  );

  it(
    'SIGTERM with a stream longer than SHUTDOWN_GRACE_MS: cut at the deadline, what was delivered is charged, exit 0',
    async () => {
      const a = await spawnGateway(db, { ...env(), SHUTDOWN_GRACE_MS: '400' });
      procs.push(a);
      const u = await adminCreateUser(a.url, 1);
      or.options.chunkIntervalMs = 200;
      or.options.chunks = 50; // ~10 s
      const s = await openStream(a.url, u.apiKey);
      const t0 = Date.now();
      a.proc.kill('SIGTERM');
      const { text } = await s.rest();
      expect(text).not.toContain('[DONE]');
      const { code } = await a.exited;
      expect(code).toBe(0);
      expect(Date.now() - t0).toBeLessThan(5000);
      const rec = await usageOf(s.requestId);
      expect(rec?.status).toBe('client_abort');
      expect(rec!.completion_tokens).toBeGreaterThan(0);
      const bal = await b.gw.billing.balance(u.userId);
      expect(bal?.held_micros).toBe(0);
      expect(bal?.balance_micros).toBe(1_000_000 - rec!.cost_micros);
      expect(await b.gw.billing.ledgerSum(u.userId)).toBe(bal?.balance_micros);
    },
    SLOW,
  );

  it(
    'SIGKILL mid-stream: settled charges survive, the dead process’s hold is released by another instance',
    async () => {
      const a = await spawnGateway(db, { ...env(), HOLD_TTL_MS: '1500', HOLD_SWEEP_INTERVAL_MS: '200' });
      procs.push(a);
      const u = await adminCreateUser(a.url, 1);
      or.options.chunkIntervalMs = 0;
      or.options.chunks = 4;
      // Completed requests: each settled in one transaction before its response.
      const done: string[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await fetch(`${a.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${u.apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: `question ${i}` }] }),
        });
        expect(r.status).toBe(200);
        done.push(r.headers.get('x-request-id')!);
      }
      or.options.chunkIntervalMs = 200;
      or.options.chunks = 50;
      const s = await openStream(a.url, u.apiKey);
      // The open stream's hold, as another process sees it: on SQLite a hold is committed with its
      // group-commit batch, a moment (≤ 2 ms) after the request went on with it.
      let held = 0;
      for (const t0 = Date.now(); held === 0 && Date.now() - t0 < 2000; await sleep(10))
        held = (await b.gw.billing.balance(u.userId))!.held_micros;
      expect(held).toBeGreaterThan(0);
      a.proc.kill('SIGKILL');
      const { error } = await s.rest();
      expect(error).toBeTruthy(); // the connection died with the process
      expect((await a.exited).signal).toBe('SIGKILL');
      // Usage of the completed requests is all there, charged once each.
      let charged = 0;
      for (const id of done) {
        const rec = await usageOf(id);
        expect(rec?.status).toBe('ok');
        charged += rec!.cost_micros;
      }
      const ledger = await b.gw.db.db
        .selectFrom('ledger')
        .selectAll()
        .where('user_id', '=', u.userId)
        .where('kind', '=', 'usage')
        .execute();
      expect(ledger.map((l) => l.reference).sort()).toEqual([...done].sort());
      // The hold of the killed stream is released by instance B's sweeper after HOLD_TTL_MS.
      const t0 = Date.now();
      while ((await b.gw.billing.balance(u.userId))!.held_micros !== 0 && Date.now() - t0 < 6000)
        await sleep(100);
      const bal = await b.gw.billing.balance(u.userId);
      expect(bal?.held_micros).toBe(0);
      expect(bal?.balance_micros).toBe(1_000_000 - charged);
      expect(await b.gw.billing.ledgerSum(u.userId)).toBe(bal?.balance_micros);
      expect(await usageOf(s.requestId)).toBeUndefined(); // never settled: nothing charged
    },
    SLOW,
  );
});
