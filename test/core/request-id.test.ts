import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newRequestId } from '../../src/lib/ids.js';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';

/** A caller's `X-Request-Id` is a correlation id: reusing one never skips a charge. */
describe.each(DATABASES)('caller request ids (%s)', (kind) => {
  let or: MockProvider;
  let g: RunningGateway;

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

  it('the same X-Request-Id twice: both served, both charged, each once', async () => {
    const u = await g.createUser(1);
    const send = (stream: boolean) =>
      fetch(`${g.v1}/chat/completions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${u.apiKey}`,
          'content-type': 'application/json',
          'x-request-id': 'client-trace-0001',
        },
        body: JSON.stringify({
          model: 'openai/gpt-4o-mini',
          messages: [{ role: 'user', content: 'hi' }],
          stream,
        }),
      });
    const ids = new Set<string>();
    for (const stream of [false, false, true, true]) {
      const r = await send(stream);
      expect(r.status).toBe(200);
      expect(r.headers.get('x-client-request-id')).toBe('client-trace-0001');
      ids.add(r.headers.get('x-request-id')!);
      await r.text();
    }
    // The gateway's own ids: one per request, and each the usage record's.
    expect(ids.size).toBe(4);
    const db = g.gw.db.db;
    const rows = await db.selectFrom('usage_records').selectAll().where('user_id', '=', u.userId).execute();
    expect(rows).toHaveLength(4);
    expect(new Set(rows.map((r) => r.request_id))).toEqual(ids);
    const ledger = await db.selectFrom('ledger').selectAll().where('user_id', '=', u.userId).execute();
    const charged = ledger.filter((l) => l.kind === 'usage').reduce((s, l) => s - Number(l.amount_micros), 0);
    expect(charged).toBe(rows.reduce((s, r) => s + Number(r.cost_micros), 0));
    expect(charged).toBeGreaterThan(0);
    const user = await db
      .selectFrom('users')
      .selectAll()
      .where('id', '=', u.userId)
      .executeTakeFirstOrThrow();
    expect(Number(user.held_micros)).toBe(0);
  });
});

describe("the gateway's request ids", () => {
  it('are unique, unguessable and sort by creation time', async () => {
    const a = Array.from({ length: 2000 }, () => newRequestId());
    await new Promise((r) => setTimeout(r, 3));
    const b = newRequestId();
    for (const id of [...a, b]) expect(id).toMatch(/^req_[0-9a-f]{32}$/);
    expect(new Set(a).size).toBe(a.length);
    // 80 random bits after the time: ids of the same millisecond differ there
    expect(new Set(a.map((id) => id.slice(16))).size).toBe(a.length);
    // time first: a later id sorts after every earlier one
    for (const id of a) expect(id < b).toBe(true);
    expect(Number.parseInt(b.slice(4, 16), 16)).toBeLessThanOrEqual(Date.now());
  });
});
