import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/lib/errors.js';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';

/** What the test guard does for one user: answer only once `open` resolves, then pass or refuse. */
interface Control {
  open: Promise<void>;
  refuse: boolean;
  entered: number;
}

describe.each(DATABASES)('admission: guards, route and hold (%s)', (kind) => {
  let or: MockProvider;
  let g: RunningGateway;
  const controls = new Map<string, Control>();

  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    g = await startGateway(await createTestDatabase(kind), {
      OPENROUTER_API_KEY: 'or-key',
      OPENROUTER_BASE_URL: or.url,
    });
    // A guard that has to wait for its answer, as Redis' rate limits do; other users pass at once.
    g.gw.pipeline.addGuard({
      name: 'test-waiting-guard',
      check(call) {
        const c = controls.get(call.principal.userId ?? '');
        if (!c) return undefined;
        c.entered++;
        return c.open.then(() => {
          if (c.refuse)
            throw new GatewayError(429, 'test limit reached', {
              type: 'rate_limit_error',
              code: 'test_limit',
            });
          return undefined;
        });
      },
    });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await or?.close();
  });

  const control = (userId: string, refuse: boolean) => {
    let open!: () => void;
    const c: Control = { open: new Promise<void>((r) => (open = r)), refuse, entered: 0 };
    controls.set(userId, c);
    return { c, open };
  };
  const chat = (apiKey: string, model = 'openai/gpt-4o-mini') =>
    fetch(`${g.v1}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 50 }),
    });
  const held = async (userId: string) => (await g.gw.billing.balance(userId))!.held_micros;
  const holdRows = async (userId: string) =>
    (await g.gw.db.db.selectFrom('holds').select('id').where('user_id', '=', userId).execute()).length;
  /** Wait until `cond` holds (the guard's answer is still pending meanwhile), at most 5 s. */
  const until = async (cond: () => Promise<boolean>) => {
    for (let i = 0; i < 500; i++) {
      if (await cond()) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error('condition not reached');
  };

  it('while a guard waits for its answer, the hold is taken: the request then goes on at once', async () => {
    const u = await g.createUser(1);
    const { c, open } = control(u.userId, false);
    const calls = or.calls.length;
    const res = chat(u.apiKey);
    await until(async () => (await held(u.userId)) > 0);
    expect(c.entered).toBe(1);
    expect(or.calls.length).toBe(calls); // nothing went upstream before the guard answered
    open();
    const r = await res;
    expect(r.status).toBe(200);
    expect(await held(u.userId)).toBe(0);
    expect(await holdRows(u.userId)).toBe(0);
    const b = (await g.gw.billing.balance(u.userId))!;
    expect(b.balance_micros).toBeLessThan(1_000_000);
    expect(await g.gw.billing.ledgerSum(u.userId)).toBe(b.balance_micros);
  });

  it("a guard's refusal releases the hold taken meanwhile before it is answered, and charges nothing", async () => {
    const u = await g.createUser(1);
    const { open } = control(u.userId, true);
    const calls = or.calls.length;
    const res = chat(u.apiKey);
    await until(async () => (await held(u.userId)) > 0);
    open();
    const r = await res;
    expect(r.status).toBe(429);
    expect(((await r.json()) as any).error.code).toBe('test_limit');
    expect(await held(u.userId)).toBe(0);
    expect(await holdRows(u.userId)).toBe(0);
    expect((await g.gw.billing.balance(u.userId))!.balance_micros).toBe(1_000_000);
    expect(await g.gw.billing.ledgerSum(u.userId)).toBe(1_000_000);
    expect(or.calls.length).toBe(calls);

    // Refused a moment ago: the user's next request waits for its guards before anything is held.
    const next = control(u.userId, false);
    const res2 = chat(u.apiKey);
    await until(async () => next.c.entered === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(await held(u.userId)).toBe(0);
    expect(await holdRows(u.userId)).toBe(0);
    next.open();
    expect((await res2).status).toBe(200);
    expect(await held(u.userId)).toBe(0);
  });

  it("a guard's refusal comes before an unknown model and before a balance too low", async () => {
    const a = await g.createUser(1);
    control(a.userId, true).open();
    const r1 = await chat(a.apiKey, 'no-such/model');
    expect(r1.status).toBe(429);
    expect(((await r1.json()) as any).error.code).toBe('test_limit');

    const b = await g.createUser(0);
    control(b.userId, true).open();
    const r2 = await chat(b.apiKey);
    expect(r2.status).toBe(429);
    expect(await held(b.userId)).toBe(0);

    // The guard passing, each is reported as itself, with nothing held.
    const c = await g.createUser(1);
    control(c.userId, false).open();
    const r3 = await chat(c.apiKey, 'no-such/model');
    expect(r3.status).toBe(404);
    const d = await g.createUser(0);
    control(d.userId, false).open();
    const r4 = await chat(d.apiKey);
    expect(r4.status).toBe(402);
    expect(await held(c.userId)).toBe(0);
    expect(await held(d.userId)).toBe(0);
  });
});
