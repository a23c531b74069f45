import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UsageRecord } from '../../src/billing/store.js';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { usageRecord } from '../helpers/usage.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';

/**
 * Hold leases (src/billing/hold-leases.ts) through the gateway's own BillingStore on a real database:
 * a user with several requests in flight holds once for many, and every charge stays exact.
 */
describe.each(DATABASES)('hold leases (%s)', (kind) => {
  let or: MockProvider;
  let g: RunningGateway;
  let n = 0;
  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    g = await startGateway(await createTestDatabase(kind), {
      OPENROUTER_API_KEY: 'k',
      OPENROUTER_BASE_URL: or.url,
    });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await or?.close();
  });

  const usage = (userId: string, keyId: string | null, cost: number): UsageRecord => ({
    ...usageRecord(userId, `req_lease_${++n}`, cost),
    key_id: keyId,
  });
  const holdRows = async (userId: string) =>
    g.gw.db.db.selectFrom('holds').select(['id', 'amount_micros']).where('user_id', '=', userId).execute();
  const state = async (userId: string) => {
    const b = (await g.gw.billing.balance(userId))!;
    return { balance: b.balance_micros, held: b.held_micros, ledger: await g.gw.billing.ledgerSum(userId) };
  };

  it('a user with requests in flight holds once for many; each charge is exact and the lease goes back with the last request', async () => {
    const u = await g.createUser(10); // 10,000,000 µ$
    const billing = g.gw.billing;
    const leases = billing.leases!;
    const before = { ...leases.stats };
    const now = Date.now();
    const hold = (i: number) =>
      billing.hold(`hold_l${n}_${i}`, u.userId, u.keyId, 1_000, `req_${i}`, now, 60_000);
    // Three requests in flight hold one by one in storage; the fourth takes a lease for them all.
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      expect(await hold(i)).toBe(true);
      ids.push(`hold_l${n}_${i}`);
    }
    expect(await holdRows(u.userId)).toHaveLength(3);
    for (let i = 3; i < 21; i++) {
      expect(await hold(i)).toBe(true);
      ids.push(`hold_l${n}_${i}`);
    }
    expect(leases.stats.leases - before.leases).toBe(1);
    expect(leases.stats.leased - before.leased).toBe(18);
    // One row for the lease (64 holds of this size) beside the three: no row per leased request.
    const rows = await holdRows(u.userId);
    expect(rows).toHaveLength(4);
    expect(rows.map((r) => r.amount_micros).sort((a, b) => a - b)).toEqual([1_000, 1_000, 1_000, 64_000]);
    expect((await state(u.userId)).held).toBe(67_000);

    // Every request settles at 700; the balance moves by exactly that, request by request.
    let expected = 10_000_000;
    for (const id of ids) {
      expected -= 700;
      expect(await billing.settle(id, 700, usage(u.userId, u.keyId, 700), u.keyId)).toBe(expected);
    }
    expect(leases.stats.returned - before.returned).toBe(1);
    expect(await holdRows(u.userId)).toHaveLength(0);
    expect(await state(u.userId)).toEqual({
      balance: 10_000_000 - 21 * 700,
      held: 0,
      ledger: 10_000_000 - 21 * 700,
    });
    const recs = await g.gw.db.db
      .selectFrom('usage_records')
      .select('cost_micros')
      .where('user_id', '=', u.userId)
      .execute();
    expect(recs).toHaveLength(21);
    const key = await g.gw.db.db
      .selectFrom('api_keys')
      .select('spent_micros')
      .where('id', '=', u.keyId)
      .executeTakeFirstOrThrow();
    expect(key.spent_micros).toBe(21 * 700);
  });

  it.runIf(kind === 'sqlite')(
    "on SQLite a lease is sized, taken and given back in the group commit's transaction: taking it commits nothing early",
    async () => {
      const u = await g.createUser(10);
      const billing = g.gw.billing;
      const before = { ...billing.leases!.stats };
      const other = new SQLite(g.db.url.slice('sqlite:'.length), { readonly: true });
      try {
        const committedHeld = () =>
          other.prepare('SELECT held_micros FROM users WHERE id = ?').pluck().get(u.userId) as number;
        await new Promise((r) => setTimeout(r, 30)); // whatever was open has committed
        const now = Date.now();
        const ids = Array.from({ length: 6 }, (_, i) => `hold_g${n}_${i}`);
        for (const id of ids)
          expect(await billing.hold(id, u.userId, u.keyId, 1_000, id, now, 60_000)).toBe(true);
        expect(billing.leases!.stats.leases - before.leases).toBe(1);
        // Three holds in storage, then the lease, sized from the balance as it stands with those three:
        // all answered within one open transaction, which nothing committed early (a read or a
        // release of Kysely's would have: they commit the group commit's transaction first).
        expect(committedHeld()).toBe(0);
        expect((await state(u.userId)).held).toBe(3_000 + 64_000); // a read of Kysely's: commits them
        let expected = 10_000_000;
        for (const id of ids) {
          expected -= 700;
          expect(await billing.settle(id, 700, usage(u.userId, u.keyId, 700), u.keyId)).toBe(expected);
        }
        // The lease went back with the last settle, committed as that settle was.
        expect(billing.leases!.stats.returned - before.returned).toBe(1);
        expect(committedHeld()).toBe(0);
        expect(await holdRows(u.userId)).toHaveLength(0);
        expect(await state(u.userId)).toEqual({
          balance: 10_000_000 - 6 * 700,
          held: 0,
          ledger: 10_000_000 - 6 * 700,
        });
      } finally {
        other.close();
      }
    },
  );

  it('a lease never covers more than the balance: concurrent requests of a small balance get exactly what it pays for', async () => {
    const u = await g.createUser(0.04); // 40,000 µ$: 40 holds of 1,000 at most
    const billing = g.gw.billing;
    const now = Date.now();
    const ids = Array.from({ length: 60 }, (_, i) => `hold_s${n}_${i}`);
    const got: string[] = [];
    // Requests arrive a few at a time, as they would: each wave in flight together.
    for (let w = 0; w < ids.length; w += 4) {
      const wave = ids.slice(w, w + 4);
      const ok = await Promise.all(
        wave.map((id) => billing.hold(id, u.userId, null, 1_000, id, now, 60_000)),
      );
      got.push(...wave.filter((_, i) => ok[i]));
    }
    // What a lease kept back while the last holds came in may be a little, never more than there is.
    expect(got.length).toBeLessThanOrEqual(40);
    expect(got.length).toBeGreaterThanOrEqual(36);
    const s = await state(u.userId);
    expect(s.held).toBeLessThanOrEqual(40_000);
    // Each settles at its full hold: the balance reaches what was served, never below zero.
    for (const id of got) await billing.settle(id, 1_000, usage(u.userId, null, 1_000), null);
    expect(await state(u.userId)).toEqual({
      balance: 40_000 - got.length * 1_000,
      held: 0,
      ledger: 40_000 - got.length * 1_000,
    });
    expect(await holdRows(u.userId)).toHaveLength(0);
  });

  it('a released leased hold writes nothing, and the lease is released with the last request', async () => {
    const u = await g.createUser(1);
    const billing = g.gw.billing;
    const now = Date.now();
    const ids = Array.from({ length: 8 }, (_, i) => `hold_r${n}_${i}`);
    for (const id of ids) expect(await billing.hold(id, u.userId, null, 500, id, now, 60_000)).toBe(true);
    expect((await holdRows(u.userId)).length).toBe(4); // three holds and the lease
    for (const id of ids.slice(3, 7)) await billing.release(id); // leased: no statement
    expect((await holdRows(u.userId)).length).toBe(4);
    await billing.settle(ids[7]!, 300, usage(u.userId, null, 300), null); // the lease's last request
    // The user still has requests in flight here: the lease stays for the next ones.
    expect((await holdRows(u.userId)).map((r) => r.amount_micros).sort((a, b) => a - b)).toEqual([
      500, 500, 500, 32_000,
    ]);
    for (const id of ids.slice(0, 3)) await billing.release(id);
    expect(await holdRows(u.userId)).toHaveLength(0);
    expect(await state(u.userId)).toEqual({ balance: 1_000_000 - 300, held: 0, ledger: 1_000_000 - 300 });
  });

  it('a debit retires the lease taken before it: no new hold comes out of money that is gone', async () => {
    const u = await g.createUser(1);
    const billing = g.gw.billing;
    const now = Date.now();
    const ids = Array.from({ length: 5 }, (_, i) => `hold_b${n}_${i}`);
    for (const id of ids) expect(await billing.hold(id, u.userId, null, 1_000, id, now, 60_000)).toBe(true);
    expect((await state(u.userId)).held).toBe(3_000 + 64_000);
    // A refund takes the balance down to 10,000 µ$, less than is held.
    await billing.post({ userId: u.userId, kind: 'refund', amount: -990_000 }, Date.now());
    expect(await billing.hold(`hold_b${n}_x`, u.userId, null, 1_000, 'req_x', Date.now(), 60_000)).toBe(
      false,
    );
    for (const id of ids) await billing.release(id);
    expect(await state(u.userId)).toEqual({ balance: 10_000, held: 0, ledger: 10_000 });
  });

  it("a dead process's lease expires like any hold; a settle after the sweep still charges exactly", async () => {
    const u = await g.createUser(1);
    const billing = g.gw.billing;
    const ids = Array.from({ length: 6 }, (_, i) => `hold_d${n}_${i}`);
    for (const id of ids)
      expect(await billing.hold(id, u.userId, null, 1_000, id, Date.now(), 1_000)).toBe(true);
    expect((await state(u.userId)).held).toBe(3_000 + 64_000);
    // The process "died": a sweeper somewhere runs after the lease's life and the hold TTL.
    expect(await billing.releaseExpired(Date.now() + 12_000)).toBeGreaterThanOrEqual(4);
    expect((await state(u.userId)).held).toBe(0);
    // The requests finish after all: each is charged, nothing is released twice.
    for (const id of ids) await billing.settle(id, 400, usage(u.userId, null, 400), null);
    expect(await state(u.userId)).toEqual({ balance: 1_000_000 - 2_400, held: 0, ledger: 1_000_000 - 2_400 });
  });

  /** `n` chat requests of one key in flight together (the mock answers after 30 ms): status and cost of each. */
  const concurrentChats = (apiKey: string, n: number) => {
    or.options.latencyMs = 30;
    return Promise.all(
      Array.from({ length: n }, () =>
        fetch(`${g.v1}/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            model: 'openai/gpt-4o-mini',
            messages: [{ role: 'user', content: 'hi' }],
            max_tokens: 16,
          }),
        }).then(async (r) => ({
          status: r.status,
          cost: (await r.json()).gateway_usage?.cost_micros as number,
        })),
      ),
    ).finally(() => {
      or.options.latencyMs = 0;
    });
  };

  it('over HTTP: concurrent requests of one user are all charged, and nothing stays held', async () => {
    const u = await g.createUser(5);
    const before = { ...g.gw.billing.leases!.stats };
    const results = await concurrentChats(u.apiKey, 24);
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(g.gw.billing.leases!.stats.leased - before.leased).toBeGreaterThan(0);
    const charged = results.reduce((a, r) => a + r.cost, 0);
    expect(charged).toBeGreaterThan(0);
    expect(await state(u.userId)).toEqual({
      balance: 5_000_000 - charged,
      held: 0,
      ledger: 5_000_000 - charged,
    });
  });

  it("the low-balance alert reads the balance, not what a lease's unused part leaves available", async () => {
    const u = await g.createUser(5);
    // A threshold just under the balance after these requests, above what is available while a
    // lease is held for them.
    const put = await fetch(`${g.url}/user/notifications/preferences`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${u.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ low_balance_threshold: 4.9993 }),
    });
    expect(put.status).toBe(200);
    const before = { ...g.gw.billing.leases!.stats };
    const results = await concurrentChats(u.apiKey, 24);
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(g.gw.billing.leases!.stats.leased - before.leased).toBeGreaterThan(0);
    const s = await state(u.userId);
    expect(s.balance).toBeGreaterThan(4_999_300);
    await new Promise((r) => setTimeout(r, 200)); // the alert check runs after each response
    const alerts = await g.gw.db.db
      .selectFrom('email_outbox')
      .select('id')
      .where('user_id', '=', u.userId)
      .where('template', '=', 'low_balance')
      .execute();
    expect(alerts).toHaveLength(0);
  });
});

describe('hold leases switched off', () => {
  it('HOLD_LEASE_MIN_IN_FLIGHT=0: every request holds in storage, however many are in flight', async () => {
    const g = await startGateway(await createTestDatabase('sqlite'), { HOLD_LEASE_MIN_IN_FLIGHT: '0' });
    try {
      expect(g.gw.billing.leases).toBeNull();
      const u = await g.createUser(1);
      const now = Date.now();
      for (let i = 0; i < 8; i++)
        expect(
          await g.gw.billing.hold(`hold_off_${i}`, u.userId, null, 500, `req_off_${i}`, now, 60_000),
        ).toBe(true);
      const rows = await g.gw.db.db
        .selectFrom('holds')
        .select('amount_micros')
        .where('user_id', '=', u.userId)
        .execute();
      expect(rows.map((r) => r.amount_micros)).toEqual(Array(8).fill(500));
    } finally {
      await g.close();
      await g.db.drop();
    }
  });
});
