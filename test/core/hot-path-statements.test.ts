import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';

/** Tables a request writes or could read: only the billing fast path's prepared statements may touch them. */
const HOT = /\b(users|holds|ledger|usage_records|api_keys|trials|stored_responses|notification_prefs)\b/i;

// SQLite only: there a statement of Kysely's first commits the group commit's open transaction (the
// hold's, shared with the settle), so one per request costs a COMMIT of its own as well as the query.
describe('an inference request runs no statement of Kysely’s on the billing tables (SQLite)', () => {
  let g: RunningGateway;
  let or: MockProvider;
  const seen: string[] = [];

  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    g = await startGateway(await createTestDatabase('sqlite'), {
      OPENROUTER_API_KEY: 'k',
      OPENROUTER_BASE_URL: or.url,
      JOBS_INTERVAL_MS: '0',
    });
    const commits = g.gw.billing.groupCommit!;
    // The hook the group commit installed, with the SQL of each statement noted first.
    g.gw.db.beforeStatement!((sql) => {
      if (HOT.test(sql)) seen.push(sql);
      commits.beforeForeign();
    });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await or?.close();
  });

  const post = async (key: string, path: string, body: unknown) => {
    const r = await fetch(g.url + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await r.text();
    expect(r.status, text.slice(0, 300)).toBe(200);
    return text;
  };
  /** Statements of Kysely's on the hot tables over five requests, after two that warm the caches. */
  const statementsOf = async (send: () => Promise<unknown>) => {
    await send();
    await send();
    await new Promise((r) => setTimeout(r, 20));
    seen.length = 0;
    for (let i = 0; i < 5; i++) await send();
    await new Promise((r) => setTimeout(r, 20));
    return [...seen];
  };
  const chat = { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] };

  it('a paid user: chat completions, JSON and stream, and Anthropic messages', async () => {
    const u = await g.createUser(10);
    expect(await statementsOf(() => post(u.apiKey, '/v1/chat/completions', chat))).toEqual([]);
    expect(
      await statementsOf(() => post(u.apiKey, '/v1/chat/completions', { ...chat, stream: true })),
    ).toEqual([]);
    expect(await statementsOf(() => post(u.apiKey, '/v1/messages', { ...chat, max_tokens: 20 }))).toEqual([]);
  });

  it('the Responses API stores each response in the settle’s transaction', async () => {
    const u = await g.createUser(10);
    const ids: string[] = [];
    const send = async (stream: boolean) => {
      const text = await post(u.apiKey, '/v1/responses', {
        model: 'openai/gpt-4o-mini',
        input: 'hi',
        stream,
      });
      const id = /"id":"(resp_[^"]+)"/.exec(text)?.[1];
      if (id) ids.push(id);
    };
    expect(await statementsOf(() => send(false))).toEqual([]);
    expect(await statementsOf(() => send(true))).toEqual([]);
    expect(ids.length).toBeGreaterThanOrEqual(14);
    // Stored and readable as soon as the answer is out.
    const last = ids.at(-1)!;
    const got = await fetch(`${g.v1}/responses/${last}`, {
      headers: { authorization: `Bearer ${u.apiKey}` },
    });
    expect(got.status).toBe(200);
    expect(((await got.json()) as { id: string }).id).toBe(last);
  });

  it('a trial user, and a user with a low-balance alert', async () => {
    const t = await g.createUser(0);
    const started = await fetch(`${g.url}/trials/start`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.apiKey}` },
    });
    expect(started.status).toBe(200);
    expect(await statementsOf(() => post(t.apiKey, '/v1/chat/completions', chat))).toEqual([]);
    expect((await g.gw.commerce.trials.get(t.userId))!.requests_used).toBe(7);

    const u = await g.createUser(10);
    const prefs = await fetch(`${g.url}/user/notifications/preferences`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${u.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ low_balance_threshold: 2 }),
    });
    expect(prefs.status).toBe(200);
    expect(await statementsOf(() => post(u.apiKey, '/v1/chat/completions', chat))).toEqual([]);
  });
});
