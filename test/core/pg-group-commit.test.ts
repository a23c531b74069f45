import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchOpError, PostgresBillingFastPath } from '../../src/billing/postgres-fast.js';
import { parseDatabaseUrl } from '../../src/config/config.js';
import { type Db, openDatabase } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrations.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { usageRecord } from '../helpers/usage.js';

/**
 * PostgreSQL's group commit (src/billing/postgres-fast.ts, migration 063) on a real server: what a
 * second connection reads is what committed.
 */
describe.runIf(process.env.TEST_DATABASE_URL)('PostgreSQL group commit', () => {
  let t: TestDatabase;
  let db: Db;
  let fast: PostgresBillingFastPath;

  beforeAll(async () => {
    t = await createTestDatabase('postgres');
    db = openDatabase(parseDatabaseUrl(t.url, t.dataDir, 4));
    await migrateToLatest(db.db, 'postgres');
    fast = new PostgresBillingFastPath(db.pgPool!);
  });
  afterAll(async () => {
    await db?.close();
    await t?.drop();
  });

  const user = async (id: string, balance: number, trial = 0) => {
    await db.db
      .insertInto('users')
      .values({
        id,
        role: 'user',
        status: 'active',
        balance_micros: balance,
        trial_balance_micros: trial,
        held_micros: 0,
        created_at: 0,
        updated_at: 0,
      } as never)
      .execute();
  };
  const row = (id: string) =>
    db.db
      .selectFrom('users')
      .select(['balance_micros', 'held_micros', 'trial_balance_micros'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();

  it('sends the holds of one turn as one batch and never holds more than the balance', async () => {
    await user('u1', 10_000);
    const before = fast.stats.batches;
    const now = Date.now();
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => fast.hold(`h1-${i}`, 'u1', null, 1_000, `r1-${i}`, now, 60_000)),
    );
    expect(results.filter(Boolean)).toHaveLength(10);
    expect(fast.stats.batches - before).toBe(1);
    expect(await row('u1')).toEqual({ balance_micros: 10_000, held_micros: 10_000, trial_balance_micros: 0 });
    const holds = await db.db.selectFrom('holds').select('id').where('user_id', '=', 'u1').execute();
    expect(holds).toHaveLength(10);
  });

  it("never has two batches with the same user's operations at the server at once", async () => {
    await user('solo', 1_000_000);
    await user('other', 1_000_000);
    // pg's pool, watched: which users each batch at the server carries, and which are out together.
    const out: string[][] = [];
    let overlap = 0;
    let together = 0;
    const names = new Set<string>();
    const pool = db.pgPool!;
    const watched = {
      query: async (q: { values: [string, boolean] }) => {
        const batch = JSON.parse(q.values[0]) as { user: string }[];
        names.add(`${batch.length > 1 ? 'many' : 'one'}, isolated: ${q.values[1]}`);
        const users = [...new Set(batch.map((o) => o.user))];
        if (out.length > 0) together++;
        if (out.some((b) => b.some((u) => users.includes(u)))) overlap++;
        out.push(users);
        try {
          return await pool.query(q as never);
        } finally {
          out.splice(out.indexOf(users), 1);
        }
      },
    };
    const watchedFast = new PostgresBillingFastPath(watched as never, 8, 4);
    const now = Date.now();
    const ops: Promise<unknown>[] = [];
    for (let turn = 0; turn < 20; turn++) {
      for (let i = 0; i < 6; i++) {
        const n = `${turn}-${i}`;
        // Two turns in three carry only the busy user's operations, the third only the other user's.
        const who = turn % 3 === 2 ? 'other' : 'solo';
        ops.push(watchedFast.hold(`hx-${n}`, who, null, 10, `rx-${n}`, now, 60_000));
        ops.push(watchedFast.settle(`hx-${n}`, 7, usageRecord(who, `rx-${n}`, 7), null));
      }
      await new Promise((r) => setImmediate(r));
    }
    const results = await Promise.all(ops);
    expect(overlap).toBe(0);
    // Batches run without a block per operation; a single operation runs in one (migration 064).
    expect([...names].filter((n) => n.startsWith('many'))).toEqual(['many, isolated: false']);
    expect(together).toBeGreaterThan(0); // different users' batches did go out side by side
    expect(results.filter((r) => r === true)).toHaveLength(120);
    // Every settle's balance is exact: each user's charges applied in order, none lost.
    expect(await row('solo')).toEqual({
      balance_micros: 1_000_000 - 84 * 7,
      held_micros: 0,
      trial_balance_micros: 0,
    });
    expect(await row('other')).toEqual({
      balance_micros: 1_000_000 - 36 * 7,
      held_micros: 0,
      trial_balance_micros: 0,
    });
  });

  it('two processes with the same users in opposite orders do not deadlock', async () => {
    await user('da', 1_000_000);
    await user('db', 1_000_000);
    // Two fast paths on two pools: two gateway processes on one database.
    const second = openDatabase(parseDatabaseUrl(t.url, t.dataDir, 4));
    const locker = await db.pgPool!.connect();
    try {
      const p1 = new PostgresBillingFastPath(db.pgPool!);
      const p2 = new PostgresBillingFastPath(second.pgPool!);
      const now = Date.now();
      // Someone holds da's row: process 1 (da, then db) waits for it at its first operation, and
      // process 2 (db, then da) would take db's row first and wait for da after it.
      await locker.query('BEGIN');
      await locker.query("SELECT 1 FROM users WHERE id = 'da' FOR UPDATE");
      const ops: Promise<unknown>[] = [];
      const holds = (p: PostgresBillingFastPath, who: string, tag: string) => {
        for (let i = 0; i < 5; i++)
          ops.push(p.hold(`${tag}-${i}`, who, null, 1, `r${tag}-${i}`, now, 60_000));
      };
      holds(p1, 'da', 'p1a');
      holds(p1, 'db', 'p1b');
      holds(p2, 'db', 'p2b');
      holds(p2, 'da', 'p2a');
      await new Promise((r) => setTimeout(r, 300)); // both batches are at the server, waiting
      await locker.query('COMMIT');
      const results = await Promise.allSettled(ops);
      expect(results.filter((r) => r.status === 'rejected').map((r) => String(r.reason))).toEqual([]);
      expect((await row('da')).held_micros).toBe(10);
      expect((await row('db')).held_micros).toBe(10);
    } finally {
      locker.release();
      await second.close();
    }
  });

  it('undoes a failing operation alone and reports its SQLSTATE; the rest of the batch commits', async () => {
    await user('u2', 10_000);
    const now = Date.now();
    expect(await fast.hold('h2', 'u2', null, 4_000, 'r2', now, 60_000)).toBe(true);
    await fast.settle(null, 100, usageRecord('u2', 'r2-dup', 100), null);
    // One turn: a settle of the hold, a settle whose usage record repeats a request id, a new hold.
    const [ok, dup, held] = await Promise.allSettled([
      fast.settle('h2', 1_500, usageRecord('u2', 'r2', 1_500), null),
      fast.settle(null, 700, usageRecord('u2', 'r2-dup', 700), null),
      fast.hold('h3', 'u2', null, 2_000, 'r3', now, 60_000),
    ]);
    expect(ok).toEqual({ status: 'fulfilled', value: 8_400 });
    expect(dup.status).toBe('rejected');
    const err = (dup as PromiseRejectedResult).reason;
    expect(err).toBeInstanceOf(BatchOpError);
    expect(err.code).toBe('23505');
    expect(held).toEqual({ status: 'fulfilled', value: true });
    // the failed settle charged nothing and wrote no ledger row
    expect(await row('u2')).toEqual({ balance_micros: 8_400, held_micros: 2_000, trial_balance_micros: 0 });
    const ledger = await db.db
      .selectFrom('ledger')
      .select('amount_micros')
      .where('user_id', '=', 'u2')
      .execute();
    expect(ledger.map((l) => l.amount_micros).sort()).toEqual([-100, -1_500].sort());
  });

  it('a batch the server refuses as a whole (a NUL in one operation) is retried operation by operation', async () => {
    await user('u4', 10_000);
    const now = Date.now();
    const bad = { ...usageRecord('u4', 'r-nul', 100), app: 'bad\u0000app' };
    const [held, nul, ok] = await Promise.allSettled([
      fast.hold('h5', 'u4', null, 1_000, 'r5', now, 60_000),
      fast.settle(null, 100, bad, null),
      fast.settle(null, 200, usageRecord('u4', 'r6', 200), null),
    ]);
    expect(held).toEqual({ status: 'fulfilled', value: true });
    expect(nul.status).toBe('rejected');
    expect((nul as PromiseRejectedResult).reason.code).toBe('22P05');
    expect(ok).toEqual({ status: 'fulfilled', value: 9_800 });
    expect(await row('u4')).toEqual({ balance_micros: 9_800, held_micros: 1_000, trial_balance_micros: 0 });
    // and batching goes on afterwards
    const before = fast.stats.batches;
    await Promise.all([
      fast.settle('h5', 0, usageRecord('u4', 'r5', 0), null),
      fast.settle(null, 0, usageRecord('u4', 'r7', 0), null),
    ]);
    expect(fast.stats.batches - before).toBe(1);
  });

  it('spends trial credits first, one ledger row per bucket', async () => {
    await user('u3', 5_000, 1_000);
    expect(await fast.hold('h4', 'u3', null, 3_000, 'r4', Date.now(), 60_000)).toBe(true);
    expect(await fast.settle('h4', 2_500, usageRecord('u3', 'r4', 2_500), null)).toBe(3_500);
    expect(await row('u3')).toEqual({ balance_micros: 3_500, held_micros: 0, trial_balance_micros: 0 });
    const ledger = await db.db
      .selectFrom('ledger')
      .select(['bucket', 'amount_micros', 'balance_after'])
      .where('user_id', '=', 'u3')
      .orderBy('id')
      .execute();
    expect(ledger).toEqual([
      { bucket: 'trial', amount_micros: -1_000, balance_after: 0 },
      { bucket: 'paid', amount_micros: -1_500, balance_after: 3_500 },
    ]);
  });
  it("a batch's effects are those of its operations one at a time (each user's and key's row written once)", async () => {
    // The same script on two sets of users and keys: once as one batch (each row written once,
    // migration 065), once one operation at a time (064's per-operation body, as for a lone one).
    const script = async (tag: string, together: boolean) => {
      const a = `${tag}-a`;
      const b = `${tag}-b`;
      await user(a, 5_000, 1_200);
      await user(b, 2_000);
      for (const [k, u] of [
        [`${tag}-ka`, a],
        [`${tag}-kb`, b],
      ] as const)
        await db.db
          .insertInto('api_keys')
          .values({
            id: k,
            user_id: u,
            key_hash: `hash-${k}`,
            prefix: 'gw',
            name: k,
            environment: 'live',
            created_at: 0,
            updated_at: 0,
          } as never)
          .execute();
      const now = Date.now();
      const rec = (u: string, r: string, cost: number, key: string | null) => ({
        ...usageRecord(u, `${tag}-${r}`, cost),
        key_id: key,
        created_at: now,
      });
      const ops: Array<() => Promise<unknown>> = [
        () => fast.hold(`${tag}-h1`, a, `${tag}-ka`, 3_000, `${tag}-r1`, now, 60_000),
        () => fast.hold(`${tag}-h2`, b, `${tag}-kb`, 1_500, `${tag}-r2`, now, 60_000),
        () => fast.hold(`${tag}-h3`, a, `${tag}-ka`, 3_000, `${tag}-r3`, now, 60_000),
        () => fast.hold(`${tag}-h4`, a, `${tag}-ka`, 1_000, `${tag}-r4`, now, 60_000), // refused: 200 left
        () => fast.settle(`${tag}-h1`, 1_000, rec(a, 'r1', 1_000, `${tag}-ka`), `${tag}-ka`), // trial only
        () => fast.settle(`${tag}-h3`, 2_900, rec(a, 'r3', 2_900, `${tag}-ka`), `${tag}-ka`), // trial + paid
        () => fast.hold(`${tag}-h5`, b, `${tag}-kb`, 600, `${tag}-r5`, now, 60_000), // refused: 500 left
        () => fast.settle(`${tag}-h2`, 1_499, rec(b, 'r2', 1_499, `${tag}-kb`), `${tag}-kb`),
        () => fast.hold(`${tag}-h6`, b, null, 501, `${tag}-r6`, now, 60_000),
        () => fast.settle(null, 0, rec(b, 'r7', 0, null), null), // free: a usage record, no ledger row
        () => fast.settle(null, 40, rec(`${tag}-nobody`, 'r8', 40, null), null), // no such user
        () => fast.hold(`${tag}-h9`, `${tag}-nobody`, null, 1, `${tag}-r9`, now, 60_000),
      ];
      const before = fast.stats.batches;
      const results = together ? await Promise.all(ops.map((o) => o())) : [];
      if (!together) for (const o of ops) results.push(await o());
      const batches = fast.stats.batches - before;
      const rows = [await row(a), await row(b)];
      const ledger = await db.db
        .selectFrom('ledger')
        .select(['user_id', 'bucket', 'amount_micros', 'balance_after', 'reference', 'description'])
        .where('user_id', 'in', [a, b])
        .orderBy('id')
        .execute();
      const keys = await db.db
        .selectFrom('api_keys')
        .select(['id', 'spent_micros'])
        .where('user_id', 'in', [a, b])
        .orderBy('id')
        .execute();
      const holds = await db.db
        .selectFrom('holds')
        .select(['id', 'amount_micros'])
        .where('user_id', 'in', [a, b, `${tag}-nobody`])
        .orderBy('id')
        .execute();
      const usage = await db.db
        .selectFrom('usage_records')
        .select(['request_id', 'cost_micros'])
        .where('request_id', 'like', `${tag}-%`)
        .orderBy('request_id')
        .execute();
      const untag = (x: unknown) => JSON.parse(JSON.stringify(x).replaceAll(`${tag}-`, ''));
      return { batches, state: untag({ results, rows, ledger, keys, holds, usage }) };
    };
    const batched = await script('eqb', true);
    const alone = await script('eqa', false);
    expect(batched.batches).toBe(1);
    expect(alone.batches).toBe(12);
    expect(batched.state).toEqual(alone.state);
    // and the figures themselves
    expect(alone.state.results).toEqual([
      true,
      true,
      true,
      false,
      5_000,
      2_300,
      false,
      501,
      true,
      501,
      null,
      false,
    ]);
    expect(alone.state.rows).toEqual([
      { balance_micros: 2_300, held_micros: 0, trial_balance_micros: 0 },
      { balance_micros: 501, held_micros: 501, trial_balance_micros: 0 },
    ]);
    expect(alone.state.keys).toEqual([
      { id: 'ka', spent_micros: 3_900 },
      { id: 'kb', spent_micros: 1_499 },
    ]);
    expect(
      alone.state.ledger.map((l: { bucket: string; amount_micros: number; balance_after: number }) => [
        l.bucket,
        l.amount_micros,
        l.balance_after,
      ]),
    ).toEqual([
      ['trial', -1_000, 200],
      ['trial', -200, 0],
      ['paid', -2_700, 2_300],
      ['paid', -1_499, 501],
    ]);
  });

  it('a batch of holds only commits without waiting for its WAL flush; a batch with a settle waits (063-065)', async () => {
    await user('sc', 10_000);
    const c = await db.pgPool!.connect();
    try {
      const configured = (await c.query('SHOW synchronous_commit')).rows[0].synchronous_commit;
      expect(configured).not.toBe('off');
      // In a transaction of our own, so what the function set for its transaction can be read back.
      const run = async (ops: unknown[]) => {
        await c.query('BEGIN');
        const r = await c.query('SELECT gwz_billing_run($1::jsonb, false) AS r', [JSON.stringify(ops)]);
        const mode = (await c.query('SHOW synchronous_commit')).rows[0].synchronous_commit;
        await c.query('COMMIT');
        return { mode, results: r.rows[0].r };
      };
      const now = Date.now();
      const hold = (id: string) => ({
        k: 'h',
        id,
        user: 'sc',
        key: null,
        amount: 100,
        req: `r-${id}`,
        at: now,
        exp: now + 60_000,
      });
      const settle = (holdId: string, req: string) => ({
        k: 's',
        user: 'sc',
        cost: 40,
        hold: holdId,
        at: now,
        req,
        trial_what: 'x (trial credits)',
        what: 'x',
        spend_key: null,
        key: null,
        endpoint: 'chat.completions',
        model: 'm',
        provider: 'p',
        pt: 1,
        ct: 1,
        cached: 0,
        reasoning: 0,
        cost_rec: 40,
        latency: 1,
        status: 'ok',
        stream: 0,
        app: null,
      });
      const holds = await run([hold('sc1'), hold('sc2')]);
      expect(holds).toEqual({ mode: 'off', results: [{ ok: true }, { ok: true }] });
      expect((await run([settle('sc1', 'r-sc1')])).mode).toBe(configured);
      expect((await run([hold('sc3'), settle('sc2', 'r-sc2')])).mode).toBe(configured);
      // Only that transaction: the connection's next one is back to the configured mode.
      expect((await c.query('SHOW synchronous_commit')).rows[0].synchronous_commit).toBe(configured);
      expect(await row('sc')).toEqual({ balance_micros: 9_920, held_micros: 100, trial_balance_micros: 0 });
    } finally {
      c.release();
    }
  });
});
