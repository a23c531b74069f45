/**
 * Cluster test (`npm run test:cluster`): 3 gateway processes on one PostgreSQL + Redis behind a
 * round-robin proxy, mixed streaming and JSON load for 30 s while one process is stopped with
 * SIGTERM (at 10 s) and another killed with SIGKILL (at 20 s), each restarted. Then: no
 * overspend, balance == Σ ledger for every user, one usage record and one charge for every 200,
 * a limit held across the fleet, no 5xx but from the killed process's own in-flight requests,
 * and /metrics (scraped during the load) shows every series the operations docs list.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { ADMIN_KEY } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';
import { adminCreateUser, freePort, type GatewayProcess, spawnGateway } from './process.js';
import { sample } from './prom.js';
import { type Backend, startRoundRobin } from './rr-proxy.js';

const REDIS = process.env.TEST_REDIS_URL;
const PG = process.env.TEST_DATABASE_URL;
const DURATION_MS = Number(process.env.CLUSTER_DURATION_MS ?? 30_000);
const WORKERS = 10;
const MODEL = 'openai/gpt-4o-mini';
const METRICS_TOKEN = 'cluster-metrics-token';
const DAY_LIMIT = 15;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Outcome {
  user: string;
  stream: boolean;
  status: number;
  requestId: string | null;
  backend: string | null;
  generation: number;
  /** 200 and (streams) the whole stream with [DONE]. */
  complete: boolean;
  cause: string;
  start: number;
  end: number;
}

describe.skipIf(!REDIS || !PG)('cluster: 3 processes, PostgreSQL + Redis, kills under load', () => {
  let or: MockProvider;
  let db: TestDatabase;
  const backends: Backend[] = [];
  const procs = new Map<string, GatewayProcess>();
  let proxy: Awaited<ReturnType<typeof startRoundRobin>>;
  let env: Record<string, string>;

  beforeAll(async () => {
    or = await startMockProvider('openrouter', { options: { chunkIntervalMs: 25, chunks: 6, latencyMs: 5 } });
    db = await createTestDatabase('postgres');
    env = {
      OPENROUTER_API_KEY: 'or-key',
      OPENROUTER_BASE_URL: or.url,
      REDIS_URL: REDIS!,
      REDIS_PREFIX: `gwz-cluster:${randomBytes(6).toString('hex')}:`,
      HOLD_TTL_MS: '4000',
      HOLD_SWEEP_INTERVAL_MS: '500',
      SHUTDOWN_GRACE_MS: '8000',
      METRICS_TOKEN,
      DATABASE_POOL_SIZE: '8',
    };
    for (const name of ['gw1', 'gw2', 'gw3'])
      backends.push({ name, port: await freePort(), down: true, generation: 0 });
    // Start one first so migrations run once, then the others.
    procs.set('gw1', await spawnGateway(db, { ...env, INSTANCE_ID: 'gw1' }, backends[0]!.port));
    backends[0]!.down = false;
    const rest = await Promise.all(
      backends.slice(1).map((b) => spawnGateway(db, { ...env, INSTANCE_ID: b.name }, b.port)),
    );
    rest.forEach((p, i) => {
      procs.set(backends[i + 1]!.name, p);
      backends[i + 1]!.down = false;
    });
    proxy = await startRoundRobin(backends);
  }, 120_000);

  afterAll(async () => {
    await proxy?.close();
    for (const p of procs.values())
      if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGTERM');
    await Promise.all([...procs.values()].map((p) => Promise.race([p.exited, sleep(15_000)])));
    for (const p of procs.values())
      if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL');
    await db?.drop();
    await or?.close();
  }, 60_000);

  it('no overspend, balance == Σ ledger, one charge per 200, limits global, 5xx only from killed processes', async () => {
    const url = proxy.url;
    const admin = (path: string, body: unknown) =>
      fetch(url + path, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    // Rich users, poor users (run out: no overspend), one user with a global daily request limit.
    const rich = await Promise.all([1, 2, 3, 4].map(() => adminCreateUser(url, 5)));
    const poor = await Promise.all([1, 2, 3].map(() => adminCreateUser(url, 0.0002)));
    const limited = await adminCreateUser(url, 5);
    const lim = await admin('/admin/rate-limits', { user_id: limited.userId, requests_per_day: DAY_LIMIT });
    expect(lim.status).toBe(200);
    const users = [...rich, ...poor, limited];
    const initial = new Map(
      users.map((u) => [u.userId, u === limited || rich.includes(u) ? 5_000_000 : 200]),
    );

    const outcomes: Outcome[] = [];
    const events: string[] = [];
    let stop = false;
    const t0 = Date.now();

    const one = async (u: (typeof users)[number], stream: boolean): Promise<Outcome> => {
      const o: Outcome = {
        user: u.userId,
        stream,
        status: 0,
        requestId: null,
        backend: null,
        generation: -1,
        complete: false,
        cause: '',
        start: Date.now(),
        end: 0,
      };
      try {
        const res = await fetch(`${url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${u.apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            model: MODEL,
            stream,
            max_tokens: 40,
            messages: [{ role: 'user', content: `hello ${Math.random()}` }],
          }),
        });
        o.status = res.status;
        o.requestId = res.headers.get('x-request-id');
        o.backend = res.headers.get('x-cluster-backend');
        o.generation = Number(res.headers.get('x-cluster-generation') ?? -1);
        const text = await res.text();
        if (res.status === 200) {
          o.complete = stream
            ? text.trimEnd().endsWith('data: [DONE]') && !text.includes('"error"')
            : JSON.parse(text).choices?.length > 0;
          o.cause = o.complete ? 'ok' : 'stream_cut';
        } else {
          let code = '';
          try {
            code = JSON.parse(text).error?.code ?? '';
          } catch {}
          o.cause = res.headers.get('x-cluster-cause') ?? `${res.status}${code ? ` ${code}` : ''}`;
        }
      } catch (err) {
        o.cause = `client_error ${(err as Error).message}`;
      }
      o.end = Date.now();
      return o;
    };

    const worker = async (i: number) => {
      let n = 0;
      while (!stop) {
        // Worker 0 hammers the limited user; the others mix rich and poor users.
        const u = i === 0 ? limited : n % 5 === 4 ? poor[n % poor.length]! : rich[(i + n) % rich.length]!;
        outcomes.push(await one(u, (n + i) % 2 === 0));
        n++;
      }
    };

    const restart = async (b: Backend, signal: 'SIGTERM' | 'SIGKILL') => {
      const p = procs.get(b.name)!;
      b.down = true;
      const kill = { backend: b.name, signal, at: Date.now(), exitAt: Number.POSITIVE_INFINITY };
      kills.push(kill);
      b.generation++;
      events.push(`${((Date.now() - t0) / 1000).toFixed(1)}s ${signal} ${b.name}`);
      p.proc.kill(signal);
      const ex = await p.exited;
      kill.exitAt = Date.now();
      events.push(
        `${((Date.now() - t0) / 1000).toFixed(1)}s ${b.name} exited code=${ex.code} signal=${ex.signal}`,
      );
      if (signal === 'SIGTERM' && ex.code !== 0)
        events.push(`${b.name}: SIGTERM exit code ${ex.code} (expected 0)`);
      exitCodes.push({ signal, code: ex.code });
      procs.set(b.name, await spawnGateway(db, { ...env, INSTANCE_ID: `${b.name}-r` }, b.port));
      b.down = false;
      events.push(`${((Date.now() - t0) / 1000).toFixed(1)}s ${b.name} restarted`);
    };

    let metricsText = '';
    const kills: Array<{ backend: string; signal: string; at: number; exitAt: number }> = [];
    const exitCodes: Array<{ signal: string; code: number | null }> = [];
    // Kill one process every DURATION/3 (SIGTERM, then SIGKILL), restarting each in the background.
    const chaos = (async () => {
      await sleep(DURATION_MS / 3);
      const first = restart(backends[0]!, 'SIGTERM');
      await sleep(Math.max(0, t0 + (2 * DURATION_MS) / 3 - Date.now()));
      const second = restart(backends[1]!, 'SIGKILL');
      await sleep(1000);
      // Scrape a live instance's /metrics while the load runs.
      const m = await fetch(`http://127.0.0.1:${backends[2]!.port}/metrics`, {
        headers: { authorization: `Bearer ${METRICS_TOKEN}` },
      });
      expect(m.status).toBe(200);
      metricsText = await m.text();
      await Promise.all([first, second]);
    })();
    const load = Promise.all(Array.from({ length: WORKERS }, (_, i) => worker(i)));
    await sleep(DURATION_MS);
    await chaos;
    stop = true;
    await load;
    const elapsed = (Date.now() - t0) / 1000;

    // Let the sweeper release the holds of the SIGKILLed process (HOLD_TTL_MS 4 s).
    const kdb = await import('pg');
    const client = new kdb.default.Client({ connectionString: db.url });
    await client.connect();
    const heldNow = async () =>
      Number((await client.query('select coalesce(sum(held_micros),0) as h from users')).rows[0].h);
    const tw = Date.now();
    while ((await heldNow()) !== 0 && Date.now() - tw < 15_000) await sleep(250);

    // ---- checks ----
    const byCause = new Map<string, number>();
    for (const o of outcomes) byCause.set(o.cause, (byCause.get(o.cause) ?? 0) + 1);
    const failed = (o: Outcome) => o.status >= 500 || o.status === 0 || (o.status === 200 && !o.complete);
    // A failure is the killed process's own when the request was open at that process between
    // SIGKILL and the process's exit. (SIGTERM drains: its in-flight requests must all succeed.)
    const isKilledInflight = (o: Outcome) =>
      failed(o) &&
      kills.some(
        (k) =>
          k.signal === 'SIGKILL' &&
          (o.backend === null || o.backend === k.backend) &&
          o.start <= k.exitAt &&
          o.end >= k.at,
      );
    const unexpected5xx = outcomes.filter((o) => failed(o) && !isKilledInflight(o));

    const usersRows = (await client.query('select id, balance_micros, held_micros from users'))
      .rows as Array<{ id: string; balance_micros: string; held_micros: string }>;
    const ledger = (await client.query('select user_id, kind, amount_micros, reference from ledger'))
      .rows as Array<{ user_id: string; kind: string; amount_micros: string; reference: string | null }>;
    const usage = (await client.query('select request_id, user_id, status, cost_micros from usage_records'))
      .rows as Array<{ request_id: string; user_id: string; status: string; cost_micros: string }>;
    await client.end();

    const problems: string[] = [];
    for (const u of usersRows) {
      if (!initial.has(u.id)) continue;
      const sum = ledger.filter((l) => l.user_id === u.id).reduce((a, l) => a + Number(l.amount_micros), 0);
      if (sum !== Number(u.balance_micros))
        problems.push(`user ${u.id}: balance ${u.balance_micros} != Σ ledger ${sum}`);
      if (Number(u.balance_micros) < 0) problems.push(`user ${u.id}: overspent, balance ${u.balance_micros}`);
      if (Number(u.held_micros) !== 0) problems.push(`user ${u.id}: ${u.held_micros} still held`);
    }
    const usageById = new Map(usage.map((r) => [r.request_id, r]));
    const chargesByRef = new Map<string, number>();
    for (const l of ledger)
      if (l.kind === 'usage' && l.reference)
        chargesByRef.set(l.reference, (chargesByRef.get(l.reference) ?? 0) + 1);
    let reconciled = 0;
    for (const o of outcomes.filter((x) => x.status === 200 && x.complete)) {
      const rec = o.requestId ? usageById.get(o.requestId) : undefined;
      if (!rec) problems.push(`200 ${o.requestId}: no usage record`);
      else if (rec.status !== 'ok') problems.push(`200 ${o.requestId}: usage status ${rec.status}`);
      const charges = chargesByRef.get(o.requestId ?? '') ?? 0;
      if (rec && Number(rec.cost_micros) > 0 && charges !== 1)
        problems.push(`200 ${o.requestId}: ${charges} charges`);
      else reconciled++;
    }
    for (const [ref, n] of chargesByRef) if (n > 1) problems.push(`request ${ref} charged ${n} times`);
    const spentUsage = usage.reduce((a, r) => a + Number(r.cost_micros), 0);
    const spentLedger = -ledger
      .filter((l) => l.kind === 'usage')
      .reduce((a, l) => a + Number(l.amount_micros), 0);
    if (spentUsage !== spentLedger)
      problems.push(`Σ usage cost ${spentUsage} != Σ usage ledger ${spentLedger}`);
    // Served under the limit: every request that reached a provider has a usage record (or was cut by
    // the SIGKILL, which only makes fewer).
    const limitedAdmitted = usage.filter((r) => r.user_id === limited.userId).length;
    const limitedRefused = outcomes.filter((o) => o.user === limited.userId && o.status === 429).length;
    if (limitedAdmitted > DAY_LIMIT)
      problems.push(`limited user served ${limitedAdmitted} > ${DAY_LIMIT} requests`);
    for (const e of exitCodes)
      if (e.signal === 'SIGTERM' && e.code !== 0) problems.push(`SIGTERM exit code ${e.code}`);
    for (const o of unexpected5xx)
      problems.push(
        `unexpected ${o.status || 'failure'} (${o.cause}) from ${o.backend} gen ${o.generation}, open ${((o.start - t0) / 1000).toFixed(2)}-${((o.end - t0) / 1000).toFixed(2)} s`,
      );

    const series = [
      'gatewayz_http_requests_total',
      'gatewayz_http_request_duration_seconds_bucket',
      'gatewayz_inference_requests_total',
      'gatewayz_upstream_duration_seconds_bucket',
      'gatewayz_gateway_overhead_seconds_bucket',
      'gatewayz_time_to_first_token_seconds_bucket',
      'gatewayz_tokens_total',
      'gatewayz_spend_usd_total',
      'gatewayz_holds_in_flight',
      'gatewayz_rate_limit_refusals_total',
      'gatewayz_breaker_state',
      'gatewayz_queue_depth',
      'nodejs_eventloop_lag_seconds',
    ];
    const missing = series.filter((s) => sample(metricsText, s) === null);
    if (missing.length) problems.push(`/metrics lacks ${missing.join(', ')}`);

    const ok = outcomes.filter((o) => o.complete).length;
    const summary = [
      '==== cluster test summary ====',
      `duration ${elapsed.toFixed(1)} s, ${WORKERS} clients, 3 gateway processes (PostgreSQL + Redis) behind a round-robin proxy`,
      `events: ${events.join('; ')}`,
      `requests ${outcomes.length} (${(outcomes.length / elapsed).toFixed(0)}/s), streams ${outcomes.filter((o) => o.stream).length}, completed 200 ${ok}`,
      `by cause: ${[...byCause.entries()]
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}`,
      `errors from the killed processes' in-flight requests: ${outcomes.filter(isKilledInflight).length}; unexpected 5xx: ${unexpected5xx.length}`,
      `charges reconciled: ${reconciled}/${ok} completed requests have exactly one usage record and one charge; Σ usage cost ${spentUsage} µ$ == Σ ledger usage ${spentLedger} µ$; users with balance == Σ ledger: ${usersRows.filter((u) => initial.has(u.id)).length}`,
      `poor users' final balances (µ$): ${poor.map((p) => usersRows.find((u) => u.id === p.userId)?.balance_micros).join(', ')} (never below 0)`,
      `limited user (requests_per_day=${DAY_LIMIT}, one Redis-backed limit for all instances): served ${limitedAdmitted}, refused 429 ${limitedRefused}`,
      `/metrics series present: ${series.length - missing.length}/${series.length}; sample gatewayz_inference_requests_total{status="ok"} on gw3 = ${sample(metricsText, 'gatewayz_inference_requests_total', { status: 'ok' })}`,
      `problems: ${problems.length === 0 ? 'none' : `\n  ${problems.slice(0, 30).join('\n  ')}`}`,
      '==============================',
    ].join('\n');
    console.log(summary);
    expect(problems).toEqual([]);
    expect(ok).toBeGreaterThan(100);
    expect(limitedRefused).toBeGreaterThan(0);
    expect(byCause.get('402 insufficient_credits') ?? 0).toBeGreaterThan(0);
  }, 240_000);
});
