import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/db.js';
import { ADMIN_KEY, type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockProvider, startMockProvider } from '../mocks/provider.js';
import { ensureDashboardBuilt, hasChromium, launch, SHOTS } from './browser.js';

const PAGES = ['overview', 'keys', 'usage', 'credits', 'chats', 'referral', 'models'];
const ADMIN_PAGES = ['admin/monitor', 'admin/users', 'admin/providers', 'admin/commerce', 'admin/audit'];

describe.skipIf(!hasChromium)('dashboard in a real browser', () => {
  let or: MockProvider;
  let g: RunningGateway;
  let browser: Browser;
  let page: Page;
  let user: { userId: string; apiKey: string; keyId: string };

  beforeAll(async () => {
    ensureDashboardBuilt();
    or = await startMockProvider('openrouter');
    g = await startGateway(await createTestDatabase('sqlite'));
    await g.close();
    g = await startGateway(g.db, { OPENROUTER_API_KEY: 'k', OPENROUTER_BASE_URL: or.url });
    user = await g.createUser(5, { username: 'ada' });
    browser = await launch();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(8000);
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await g?.close();
    await g?.db.drop();
    await or?.close();
  });

  const go = async (path: string) => {
    await page.goto(`${g.url}/dashboard/#/${path}`);
  };
  const signIn = async (key: string) => {
    await page.goto(`${g.url}/dashboard/`);
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
  };
  const signOut = async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
  };
  const navTo = async (title: string) => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: title }).click();
  };

  it('serves the app with no external requests and a strict CSP', async () => {
    const res = await fetch(`${g.url}/dashboard/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    const external: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(g.url)) external.push(r.url());
    });
    await page.goto(`${g.url}/dashboard/`);
    await page.getByLabel('API key').waitFor();
    expect(external).toEqual([]);
  });

  it('a wrong key is refused; a user signs in and sees the balance', async () => {
    await page.goto(`${g.url}/dashboard/`);
    await page.getByLabel('API key').fill('gw_live_wrongwrongwrongwrongwrongwrongwrongwro');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toMatch(/invalid|key/i);
    await signIn(user.apiKey);
    await page.getByTestId('balance').filter({ hasText: '$5' }).waitFor();
    // the key is never stored in the browser
    const stored = await page.evaluate(
      () => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie,
    );
    expect(stored).not.toContain('gw_live_');
  });

  it('creates a key, signs in with it and streams a chat from the playground; the spend appears in the chart', async () => {
    await navTo('API keys');
    await page.getByLabel('Name').fill('playground key');
    await page.getByRole('button', { name: 'Create key' }).click();
    const secret = (await page.getByTestId('new-key').textContent())!.trim();
    expect(secret).toMatch(/^gw_live_/);
    await page.getByRole('table', { name: 'API keys' }).getByText('playground key').waitFor();

    await signOut();
    await signIn(secret);
    await navTo('Models');
    await page.getByLabel('Model', { exact: true }).selectOption('openai/gpt-4o-mini');
    await page.getByLabel('Prompt').fill('Hello from the playground');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByTestId('playground-output').filter({ hasText: 'Hello from mock' }).waitFor();
    await page.getByTestId('playground-output').filter({ hasText: 'tokens' }).waitFor();
    const calls = or.calls.filter((c) => c.path.endsWith('/chat/completions'));
    expect(calls.at(-1)!.body.messages[0].content).toBe('Hello from the playground');

    await navTo('Overview');
    await expect
      .poll(async () => Number((await page.getByTestId('spend-today').textContent())?.replace(/[$,]/g, '')), {
        timeout: 8000,
      })
      .toBeGreaterThan(0);
    await expect(page.getByTestId('chart').getAttribute('data-points')).resolves.not.toBe('0');
    const bal = (await g.gw.billing.balance(user.userId))!;
    expect(bal.balance_micros).toBeLessThan(5_000_000);
  });

  it('redeems a coupon', async () => {
    const created = await g.admin('/admin/coupons', {
      code: 'WELCOME5',
      kind: 'credit',
      value: 5,
      max_uses: 10,
    });
    expect(created.status).toBeLessThan(300);
    await navTo('Credits');
    await page.getByLabel('Coupon code').fill('WELCOME5');
    await page.getByRole('button', { name: 'Redeem' }).click();
    await page.getByTestId('coupon-result').filter({ hasText: 'WELCOME5' }).waitFor();
    await page.getByRole('table', { name: 'Credit transactions' }).waitFor();
  });

  it('a non-admin cannot reach operator pages, in the UI or the API', async () => {
    await go('admin/users');
    await page.getByTestId('forbidden').waitFor();
    expect(
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).count(),
    ).toBe(0);
    const res = await fetch(`${g.url}/admin/users`, { headers: { authorization: `Bearer ${user.apiKey}` } });
    expect(res.status).toBe(403);
    const audit = await fetch(`${g.url}/admin/audit-logs`, {
      headers: { authorization: `Bearer ${user.apiKey}` },
    });
    expect(audit.status).toBe(403);
  });

  it('an admin adds credits and sees the audit row', async () => {
    await signOut();
    await signIn(ADMIN_KEY);
    await navTo('Users');
    const row = page.getByRole('row').filter({ hasText: user.userId });
    await row.getByRole('button', { name: 'Add credits' }).click();
    await page.getByLabel(/Credits to add/).fill('7');
    await page
      .getByRole('form', { name: 'Add credits to user' })
      .getByRole('button', { name: 'Add credits' })
      .click();
    await page.getByTestId('admin-note').filter({ hasText: 'Credits added' }).waitFor();
    const ledger = await g.gw.db.db
      .selectFrom('ledger')
      .selectAll()
      .where('user_id', '=', user.userId)
      .where('kind', '=', 'admin_credit')
      .execute();
    expect(ledger.map((l) => Number(l.amount_micros))).toContain(7_000_000);
    await navTo('Audit log');
    await page.getByRole('table', { name: 'Audit log' }).getByText(user.userId).first().waitFor();

    // the live monitor shows the last minutes' traffic; the providers page re-syncs catalogs on demand
    await navTo('Monitor');
    await expect
      .poll(async () => Number(await page.getByTestId('live-requests').textContent()), { timeout: 8000 })
      .toBeGreaterThan(0);
    const syncsBefore = or.calls.filter((c) => c.path.endsWith('/models')).length;
    await navTo('Providers & rankings');
    await page.getByRole('button', { name: 'Sync catalogs now' }).click();
    await page.getByTestId('sync-status').filter({ hasText: 'Catalogs synced' }).waitFor();
    expect(or.calls.filter((c) => c.path.endsWith('/models')).length).toBe(syncsBefore + 1);
  });

  it('screenshots every page at desktop and phone width', async () => {
    const shoot = async (paths: string[], key: string, tag: string) => {
      for (const [w, h, name] of [
        [1280, 800, 'desktop'],
        [390, 844, 'phone'],
      ] as const) {
        await page.setViewportSize({ width: w, height: h });
        await signIn(key);
        for (const p of paths) {
          await go(p);
          await page.getByRole('heading', { level: 1 }).waitFor();
          await page.waitForTimeout(150);
          await page.screenshot({
            path: `${SHOTS}/${tag}-${p.replace('/', '-')}-${name}.png`,
            fullPage: true,
          });
        }
        await signOut();
      }
    };
    await shoot(PAGES, user.apiKey, 'user');
    await shoot(ADMIN_PAGES, ADMIN_KEY, 'operator');
    await page.setViewportSize({ width: 1280, height: 800 });
  }, 120_000);
});
