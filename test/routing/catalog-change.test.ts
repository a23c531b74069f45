import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';
import { chat } from './helpers.js';

/**
 * The router keeps each model's resolved targets between requests (src/routing/router.ts); a
 * catalog sync must replace them: a model gone from the provider's list is refused, a new one served.
 */
describe.each(DATABASES)('routing follows the catalog (%s)', (kind) => {
  let or: MockProvider;
  let g: RunningGateway;
  beforeAll(async () => {
    or = await startMockProvider('openrouter');
    g = await startGateway(await createTestDatabase(kind), {
      OPENROUTER_API_KEY: 'or',
      OPENROUTER_BASE_URL: or.url,
    });
  });
  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    await or?.close();
  });

  it('a catalog sync replaces the targets resolved for earlier requests', async () => {
    const u = await g.createUser(10);
    const NEW = 'acme/new-model-1';
    expect((await chat(g, u.apiKey, { model: 'openai/gpt-4o-mini' })).status).toBe(200);
    const before = await chat(g, u.apiKey, { model: NEW });
    expect(before.status).toBe(404);
    expect(before.json.error.code).toBe('model_not_found');

    const mini = or.models.find((m) => m.id === 'openai/gpt-4o-mini')!;
    or.models.splice(or.models.indexOf(mini), 1, { ...mini, id: NEW });
    const sync = await g.admin('/admin/catalog/sync', {});
    expect(sync.status).toBe(200);

    const gone = await chat(g, u.apiKey, { model: 'openai/gpt-4o-mini' });
    expect(gone.status).toBe(404);
    expect(gone.json.error.code).toBe('model_not_found');
    const served = await chat(g, u.apiKey, { model: NEW });
    expect(served.status).toBe(200);
    expect(served.headers.get('x-gatewayz-model')).toBe(NEW);
    expect(or.calls.at(-1)!.body.model).toBe(NEW);
  });
});
