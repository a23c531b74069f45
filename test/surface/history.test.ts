import { countTokens } from 'gpt-tokenizer';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';

const MODEL = 'openai/gpt-4o-mini';
const TINY = 'vendor/tiny-context'; // 160-token context window

describe.each(DATABASES)('chat history (%s)', (kind) => {
  let or: MockProvider;
  let g: RunningGateway;

  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    or.models.push({
      id: TINY,
      context_length: 160,
      max_completion_tokens: 40,
      pricing: { prompt: '0.000001', completion: '0.000002' },
    });
    const db = await createTestDatabase(kind);
    g = await startGateway(db, { OPENROUTER_API_KEY: 'k', OPENROUTER_BASE_URL: or.url });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await or?.close();
  });

  const call = async (key: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(g.url + path, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const balance = async (userId: string) => (await g.gw.billing.balance(userId))!.balance_micros;
  const chatCalls = () => or.calls.filter((c) => c.path.endsWith('/chat/completions'));
  const newSession = async (key: string, title?: string) =>
    (await call(key, 'POST', '/chat/sessions', title ? { title } : {})).body.data.id as string;

  it('non-stream: system first, then stored history, then the new turn; both turns saved; session bumped', async () => {
    const u = await g.createUser(5);
    const sid = await newSession(u.apiKey, 'Geography');
    await call(u.apiKey, 'POST', `/chat/sessions/${sid}/messages`, {
      role: 'user',
      content: 'What is the capital of France?',
    });
    await call(u.apiKey, 'POST', `/chat/sessions/${sid}/messages`, { role: 'assistant', content: 'Paris.' });
    const before = (await call(u.apiKey, 'GET', `/chat/sessions/${sid}`)).body.data;
    const client = new OpenAI({ apiKey: u.apiKey, baseURL: g.v1, maxRetries: 0 });
    or.reset();
    const r = await client.chat.completions.create(
      {
        model: MODEL,
        messages: [
          { role: 'system', content: 'You are terse.' },
          { role: 'user', content: 'And of Italy?' },
        ],
      },
      { query: { session_id: sid } },
    );
    const sent = chatCalls()[0]!.body;
    expect(sent.messages).toEqual([
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'What is the capital of France?' },
      { role: 'assistant', content: 'Paris.' },
      { role: 'user', content: 'And of Italy?' },
    ]);
    expect(sent.session_id).toBeUndefined();
    expect(chatCalls()[0]!.path).not.toContain('session_id');

    const after = (await call(u.apiKey, 'GET', `/chat/sessions/${sid}`)).body.data;
    expect(after.messages.map((m: any) => [m.role, m.content])).toEqual([
      ['user', 'What is the capital of France?'],
      ['assistant', 'Paris.'],
      ['user', 'And of Italy?'],
      ['assistant', r.choices[0]!.message.content],
    ]);
    expect(after.message_count).toBe(4);
    expect(after.model).toBe(MODEL);
    expect(after.updated_at).toBeGreaterThanOrEqual(before.updated_at);
    expect(after.messages[3].model).toBe(MODEL);
  });

  it('stream (session_id in the body): the streamed reply and the user turn are saved before [DONE]', async () => {
    const u = await g.createUser(5);
    const sid = await newSession(u.apiKey);
    const client = new OpenAI({ apiKey: u.apiKey, baseURL: g.v1, maxRetries: 0 });
    const turn = async (content: string) => {
      const s = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content }],
        stream: true,
        session_id: sid,
      } as any);
      let text = '';
      for await (const c of s as any) text += c.choices[0]?.delta?.content ?? '';
      return text;
    };
    const first = await turn('first streamed question');
    // read immediately after the stream ended: no waiting, the save happened before [DONE]
    const s1 = (await call(u.apiKey, 'GET', `/v1/chat/sessions/${sid}`)).body.data;
    expect(s1.messages.map((m: any) => [m.role, m.content])).toEqual([
      ['user', 'first streamed question'],
      ['assistant', first],
    ]);
    expect(first.length).toBeGreaterThan(0);
    or.reset();
    const second = await turn('second one');
    expect(chatCalls()[0]!.body.messages).toEqual([
      { role: 'user', content: 'first streamed question' },
      { role: 'assistant', content: first },
      { role: 'user', content: 'second one' },
    ]);
    const s2 = (await call(u.apiKey, 'GET', `/chat/sessions/${sid}`)).body.data;
    expect(s2.messages.map((m: any) => m.content)).toEqual([
      'first streamed question',
      first,
      'second one',
      second,
    ]);
  });

  it('history is trimmed oldest first, by token count, to fit the context window', async () => {
    const u = await g.createUser(5);
    const sid = await newSession(u.apiKey);
    const stored: Array<{ role: string; content: string }> = [];
    for (let i = 1; i <= 8; i++) {
      const m = {
        role: i % 2 ? 'user' : 'assistant',
        content: `message number ${i} about the history of the Roman empire and its roads`,
      };
      stored.push(m);
      await call(u.apiKey, 'POST', `/chat/sessions/${sid}/messages`, m);
    }
    const client = new OpenAI({ apiKey: u.apiKey, baseURL: g.v1, maxRetries: 0 });
    or.reset();
    const system = { role: 'system' as const, content: 'Answer briefly.' };
    const next = { role: 'user' as const, content: 'Summarise.' };
    await client.chat.completions.create(
      { model: TINY, messages: [system, next], max_tokens: 30 },
      { query: { session_id: sid } },
    );
    const sent = chatCalls()[0]!.body.messages as Array<{ role: string; content: string }>;
    expect(sent[0]).toEqual(system);
    expect(sent.at(-1)).toEqual(next);
    const kept = sent.slice(1, -1);
    // a non-empty suffix of the stored history (the newest messages), starting with a user turn
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(stored.length);
    expect(kept).toEqual(stored.slice(stored.length - kept.length));
    expect(kept[0]!.role).toBe('user');
    // fits: tokens (+4 per message) + the output budget ≤ context; one more older message would not
    const t = (m: { content: string }) => countTokens(m.content) + 4;
    const used = [system, next, ...kept].reduce((a, m) => a + t(m), 0);
    expect(used + 30).toBeLessThanOrEqual(160);
    const older = stored[stored.length - kept.length - 1]!;
    const evenOlder = stored[stored.length - kept.length - 2];
    // the next older message (or the pair that keeps a user turn first) would overflow
    expect(used + t(older) + (older.role === 'user' ? 0 : t(evenOlder!)) + 30).toBeGreaterThan(160);

    // with a large context window nothing is dropped
    or.reset();
    await client.chat.completions.create({ model: MODEL, messages: [next] }, { query: { session_id: sid } });
    expect(chatCalls()[0]!.body.messages).toHaveLength(stored.length + 2 + 1);
  });

  it("stored system messages go first with the request's; tool messages are not replayed; only user turns are saved", async () => {
    const u = await g.createUser(5);
    const sid = await newSession(u.apiKey);
    await call(u.apiKey, 'POST', `/chat/sessions/${sid}/messages`, { role: 'user', content: 'hi' });
    await call(u.apiKey, 'POST', `/chat/sessions/${sid}/messages`, {
      role: 'system',
      content: 'Speak French.',
    });
    await call(u.apiKey, 'POST', `/chat/sessions/${sid}/messages`, { role: 'tool', content: '{"temp":20}' });
    await call(u.apiKey, 'POST', `/chat/sessions/${sid}/messages`, { role: 'assistant', content: 'bonjour' });
    const client = new OpenAI({ apiKey: u.apiKey, baseURL: g.v1, maxRetries: 0 });
    or.reset();
    await client.chat.completions.create(
      {
        model: MODEL,
        messages: [
          { role: 'system', content: 'Be kind.' },
          { role: 'user', content: 'and now?' },
        ],
      },
      { query: { session_id: sid } },
    );
    expect(chatCalls()[0]!.body.messages.map((m: any) => [m.role, m.content])).toEqual([
      ['system', 'Be kind.'],
      ['system', 'Speak French.'],
      ['user', 'hi'],
      ['assistant', 'bonjour'],
      ['user', 'and now?'],
    ]);
    const saved = (await call(u.apiKey, 'GET', `/chat/sessions/${sid}`)).body.data.messages;
    // the request's system prompt is not saved; the user turn and the reply are
    expect(saved.map((m: any) => m.role)).toEqual([
      'user',
      'system',
      'tool',
      'assistant',
      'user',
      'assistant',
    ]);
    expect(saved[4].content).toBe('and now?');
  });

  it("another user's session does not exist for you: 404 everywhere, nothing sent, nothing charged", async () => {
    const a = await g.createUser(5);
    const b = await g.createUser(5);
    const sid = await newSession(a.apiKey, 'private plans');
    await call(a.apiKey, 'POST', `/chat/sessions/${sid}/messages`, { role: 'user', content: 'secret stuff' });
    const missing = await call(b.apiKey, 'GET', '/chat/sessions/chat_doesnotexist000000');
    expect(missing.status).toBe(404);
    for (const [method, path, body] of [
      ['GET', `/chat/sessions/${sid}`, undefined],
      ['GET', `/v1/chat/sessions/${sid}`, undefined],
      ['PATCH', `/chat/sessions/${sid}`, { title: 'mine now' }],
      ['PUT', `/chat/sessions/${sid}`, { title: 'mine now' }],
      ['DELETE', `/chat/sessions/${sid}`, undefined],
      ['POST', `/chat/sessions/${sid}/messages`, { role: 'user', content: 'injected' }],
    ] as const) {
      const r = await call(b.apiKey, method, path, body);
      expect(r.status, `${method} ${path}`).toBe(404);
      // indistinguishable from a session that never existed
      expect(r.body).toEqual(missing.body);
    }
    expect((await call(b.apiKey, 'GET', '/chat/sessions')).body.data).toEqual([]);
    expect((await call(b.apiKey, 'POST', '/chat/search', { query: 'secret' })).body.data).toEqual([]);

    or.reset();
    const before = await balance(b.userId);
    const client = new OpenAI({ apiKey: b.apiKey, baseURL: g.v1, maxRetries: 0 });
    await expect(
      client.chat.completions.create(
        { model: MODEL, messages: [{ role: 'user', content: 'hi' }] },
        { query: { session_id: sid } },
      ),
    ).rejects.toMatchObject({ status: 404 });
    expect(chatCalls()).toHaveLength(0);
    expect(await balance(b.userId)).toBe(before);
    // and A's session is untouched
    const own = (await call(a.apiKey, 'GET', `/chat/sessions/${sid}`)).body.data;
    expect(own.title).toBe('private plans');
    expect(own.messages.map((m: any) => m.content)).toEqual(['secret stuff']);
  });

  it('a failed completion saves nothing and costs nothing', async () => {
    const u = await g.createUser(5);
    const sid = await newSession(u.apiKey);
    or.reset();
    or.faults.push({ type: 'status', status: 400 });
    const before = await balance(u.userId);
    const client = new OpenAI({ apiKey: u.apiKey, baseURL: g.v1, maxRetries: 0 });
    await expect(
      client.chat.completions.create(
        { model: MODEL, messages: [{ role: 'user', content: 'hi' }] },
        { query: { session_id: sid } },
      ),
    ).rejects.toMatchObject({ status: 400 });
    expect((await call(u.apiKey, 'GET', `/chat/sessions/${sid}`)).body.data.messages).toEqual([]);
    expect(await balance(u.userId)).toBe(before);
  });

  it('sessions: create, list by newest activity (paginated), rename, search, stats, delete', async () => {
    const u = await g.createUser(1);
    const s1 = await newSession(u.apiKey, 'Alpha trip');
    const s2 = (await call(u.apiKey, 'POST', '/v1/chat/sessions', { title: 'Beta recipes', model: MODEL }))
      .body.data;
    expect(s2).toMatchObject({
      object: 'chat.session',
      title: 'Beta recipes',
      model: MODEL,
      message_count: 0,
    });
    expect(s2.id).toMatch(/^chat_[A-Za-z0-9_-]{16}$/);
    // no body at all: a default title
    const bare = await fetch(`${g.url}/chat/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${u.apiKey}` },
    });
    expect(bare.status).toBe(200);
    const s3 = ((await bare.json()) as any).data.id as string;
    await new Promise((r) => setTimeout(r, 5));
    await call(u.apiKey, 'POST', `/chat/sessions/${s1}/messages`, {
      role: 'user',
      content: 'Pack 100% wool socks',
    });
    const list = (await call(u.apiKey, 'GET', '/chat/sessions?limit=2')).body;
    expect(list.total).toBe(3);
    expect(list.has_more).toBe(true);
    expect(list.data.map((s: any) => s.id)).toEqual([s1, s3]);
    const page2 = (await call(u.apiKey, 'GET', '/chat/sessions?limit=2&offset=2')).body;
    expect(page2.data.map((s: any) => s.id)).toEqual([s2.id]);
    expect((await call(u.apiKey, 'GET', `/chat/sessions/${s3}`)).body.data.title).toBe('New chat');

    const renamed = await call(u.apiKey, 'PATCH', `/chat/sessions/${s3}`, { title: 'Gamma notes' });
    expect(renamed.body.data.title).toBe('Gamma notes');

    const byMessage = (await call(u.apiKey, 'POST', '/chat/search', { query: 'WOOL' })).body.data;
    expect(byMessage.map((s: any) => s.id)).toEqual([s1]);
    expect(byMessage[0].matches[0]).toMatchObject({ role: 'user', content: 'Pack 100% wool socks' });
    expect(
      (await call(u.apiKey, 'POST', '/v1/chat/search', { query: 'gamma' })).body.data.map((s: any) => s.id),
    ).toEqual([s3]);
    // LIKE wildcards are literal
    expect(
      (await call(u.apiKey, 'POST', '/chat/search', { query: '%' })).body.data.map((s: any) => s.id),
    ).toEqual([s1]);
    expect((await call(u.apiKey, 'POST', '/chat/search', { query: '_' })).body.data).toEqual([]);

    const stats = (await call(u.apiKey, 'GET', '/chat/stats')).body.data;
    expect(stats).toMatchObject({ total_sessions: 3, total_messages: 1, messages_by_role: { user: 1 } });
    expect(stats.total_tokens).toBeGreaterThan(0);

    expect((await call(u.apiKey, 'DELETE', `/chat/sessions/${s1}`)).status).toBe(200);
    expect((await call(u.apiKey, 'GET', `/chat/sessions/${s1}`)).status).toBe(404);
    expect((await call(u.apiKey, 'GET', '/v1/chat/stats')).body.data).toMatchObject({
      total_sessions: 2,
      total_messages: 0,
    });
  });

  it('bad input → 400 in OpenAI shape, nothing changed', async () => {
    const u = await g.createUser(1);
    const sid = await newSession(u.apiKey, 'keep');
    for (const [method, path, body, param] of [
      ['POST', '/chat/sessions', { title: '' }, 'title'],
      ['POST', '/chat/sessions', { title: 'x', owner: 'someone' }, 'owner'],
      ['PATCH', `/chat/sessions/${sid}`, { title: '' }, 'title'],
      ['POST', `/chat/sessions/${sid}/messages`, { role: 'wizard', content: 'x' }, 'role'],
      ['POST', `/chat/sessions/${sid}/messages`, { role: 'user' }, 'content'],
      ['POST', '/chat/search', { query: '' }, 'query'],
      ['GET', '/chat/sessions?limit=0', undefined, 'limit'],
    ] as const) {
      const r = await call(u.apiKey, method, path, body);
      expect(r.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(400);
      expect(r.body.error).toMatchObject({ type: 'invalid_request_error' });
      expect(r.body.error.param ?? '').toContain(param);
    }
    const before = await balance(u.userId);
    or.reset();
    const bad = await fetch(`${g.v1}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${u.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }], session_id: 42 }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error.param).toBe('session_id');
    expect(chatCalls()).toHaveLength(0);
    expect(await balance(u.userId)).toBe(before);
    const s = (await call(u.apiKey, 'GET', `/chat/sessions/${sid}`)).body.data;
    expect(s).toMatchObject({ title: 'keep', message_count: 0 });
    expect((await call(u.apiKey, 'GET', '/chat/sessions')).body.total).toBe(1);
  });
});
