import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { type MockPrivy, startMockPrivy } from '../mocks/privy.js';
import { ensureDashboardBuilt, hasChromium, launch, SHOTS } from './browser.js';

/** Every request the page made, with its Authorization header (if any). */
interface Seen {
  url: string;
  method: string;
  authorization: string | undefined;
}

describe.skipIf(!hasChromium)('dashboard: Privy sign-in in a real browser', () => {
  let privy: MockPrivy;
  let g: RunningGateway;
  let plain: RunningGateway;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let seen: Seen[];
  /** Uncaught errors and console errors (a CSP violation is one). */
  let problems: string[];

  beforeAll(async () => {
    ensureDashboardBuilt();
    privy = await startMockPrivy({ clientId: 'client-dashboard' });
    g = await startGateway(await createTestDatabase('sqlite'), {
      PRIVY_APP_ID: privy.appId,
      PRIVY_CLIENT_ID: 'client-dashboard',
      // The app's keys as Privy publishes them: a JWKS (served by the local Privy).
      PRIVY_JWKS_URL: privy.jwksUrl,
      PRIVY_API_URL: privy.url,
      SIGNUP_CREDITS_USD: '3',
    });
    plain = await startGateway(await createTestDatabase('sqlite'));
    browser = await launch();
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    for (const gw of [g, plain]) {
      await gw?.close();
      await gw?.db.drop();
    }
    await privy?.close();
  });

  /** A fresh browser profile per test: nothing stored by an earlier test can help or hide. */
  const open = async (gw: RunningGateway) => {
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
    seen = [];
    problems = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('request', (r) =>
      seen.push({ url: r.url(), method: r.method(), authorization: r.headers().authorization }),
    );
    await page.goto(`${gw.url}/dashboard/`);
    await page.getByLabel('API key').waitFor();
  };
  afterEach(async () => {
    await context?.close();
  });

  const requestCode = async (email: string) => {
    await page.getByLabel('E-mail', { exact: true }).fill(email);
    await page.getByRole('button', { name: 'Send code' }).click();
    await page.getByTestId('privy-sent').filter({ hasText: email }).waitFor();
  };
  /** Typed from the keyboard: the code field has the focus once the code is sent; Enter submits. */
  const enterCode = async (code: string) => {
    await expect.poll(() => page.evaluate(() => document.activeElement?.getAttribute('name'))).toBe('code');
    await page.keyboard.type(code);
    await page.keyboard.press('Enter');
  };
  /** E-mail → code (read from the mock's "inbox") → signed in; returns POST /auth/privy's answer. */
  const signInWithPrivy = async (email: string) => {
    await requestCode(email);
    const login = page.waitForResponse((r) => r.url().endsWith('/auth/privy'));
    await enterCode(privy.lastCode(email)!);
    const answer = await (await login).json();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
    return answer as { user_id: string; is_new_user: boolean; api_key?: string; credits: number };
  };
  const navTo = async (title: string) => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: title }).click();
    await page.getByRole('heading', { level: 1, name: title }).waitFor();
  };
  /** Nothing left 127.0.0.1, and the page stored nothing anywhere. */
  const expectLocalAndStateless = async () => {
    const hosts = new Set(seen.map((s) => new URL(s.url).hostname));
    expect([...hosts]).toEqual(['127.0.0.1']);
    const stored = await page.evaluate(() => ({
      local: localStorage.length,
      session: sessionStorage.length,
      cookie: document.cookie,
    }));
    expect(stored).toEqual({ local: 0, session: 0, cookie: '' });
    expect(await context.cookies()).toEqual([]);
  };
  afterEach(() => {
    // Refused requests (the admin probe's 403, a wrong code's 401, the favicon's 404) are logged
    // by the browser as "Failed to load resource"; anything else (a CSP violation, an exception) is a bug.
    expect(problems.filter((p) => !p.startsWith('Failed to load resource'))).toEqual([]);
  });

  it('signs up by e-mail code, sees the signup credits, creates a key, moves on and signs out', async () => {
    await open(g);
    await page.getByRole('heading', { name: 'Sign in with Privy' }).waitFor();
    await page.screenshot({ path: `${SHOTS}/privy-signin-desktop.png`, fullPage: true });
    // The SDK is its own chunk, fetched only once a Privy sign-in starts.
    const sdkChunks = () => seen.filter((s) => /\/assets\/esm-[^/]+\.js$/.test(s.url)).length;
    expect(sdkChunks()).toBe(0);

    const email = 'grace@example.com';
    await requestCode(email);
    await page.screenshot({ path: `${SHOTS}/privy-code-desktop.png`, fullPage: true });
    await page.getByRole('button', { name: 'Use another e-mail' }).click();
    const answer = await signInWithPrivy(email);
    expect(sdkChunks()).toBe(1);
    expect(answer.is_new_user).toBe(true);
    expect(answer.credits).toBe(3);

    // The Privy SDK talked to the local Privy, from the dashboard's origin, as this app and client.
    const paths = privy.calls.map((c) => `${c.method} ${c.path}`);
    for (const p of [
      `GET /api/v1/apps/${privy.appId}`,
      'POST /api/v1/passwordless/init',
      'POST /api/v1/passwordless/authenticate',
    ])
      expect(paths).toContain(p);
    // The gateway read the app's keys from the JWKS; everything else came from the browser.
    expect(paths).toContain('GET /jwks.json');
    for (const c of privy.calls.filter((c) => c.path.startsWith('/api/'))) {
      expect(c.origin).toBe(g.url);
      expect(c.appId).toBe(privy.appId);
      expect(c.clientId).toBe('client-dashboard');
      expect(c.status, `${c.method} ${c.path}`).toBeLessThan(300);
    }

    // The account behind the session is the one POST /auth/privy created for the Privy DID.
    const row = await g.gw.db.db
      .selectFrom('users')
      .selectAll()
      .where('id', '=', answer.user_id)
      .executeTakeFirstOrThrow();
    expect(row.privy_id).toBe(privy.didOf(email));
    expect(row.email).toBe(email);
    await page.getByTestId('balance').filter({ hasText: '$3' }).waitFor();
    await page.screenshot({ path: `${SHOTS}/privy-first-key-desktop.png`, fullPage: true });

    // The first API key is shown once; it is a working key.
    const first = (await page.getByTestId('new-key').textContent())!.trim();
    expect(first).toBe(answer.api_key);
    const viaKey = await fetch(`${g.url}/user/balance`, { headers: { authorization: `Bearer ${first}` } });
    expect(((await viaKey.json()) as any).user_id).toBe(answer.user_id);
    await page.getByRole('button', { name: 'I have saved it' }).click();
    expect(await page.getByTestId('new-key').count()).toBe(0);

    // The dashboard's bearer is the Privy access token, never the key.
    const gatewayCalls = seen.filter((s) => s.url.startsWith(`${g.url}/user/`));
    expect(gatewayCalls.length).toBeGreaterThan(0);
    for (const s of gatewayCalls) {
      expect(s.authorization, s.url).toMatch(/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
      expect(s.authorization).not.toContain('gw_');
    }

    await navTo('API keys');
    await page.getByLabel('Name').fill('from privy session');
    await page.getByRole('button', { name: 'Create key' }).click();
    const created = (await page.getByTestId('new-key').textContent())!.trim();
    expect(created).toMatch(/^gw_live_/);
    await page.getByRole('table', { name: 'API keys' }).getByText('from privy session').waitFor();
    const keys = await g.gw.db.db
      .selectFrom('api_keys')
      .select('name')
      .where('user_id', '=', answer.user_id)
      .execute();
    expect(keys.map((k) => k.name).sort()).toEqual(['Primary key', 'from privy session']);

    await navTo('Credits');
    await page.getByRole('table', { name: 'Credit transactions' }).waitFor();
    await page.screenshot({ path: `${SHOTS}/privy-credits-desktop.png`, fullPage: true });
    // The playground spends credits, so a Privy session types an API key in.
    await navTo('Models');
    await page.getByLabel('API key for the playground').waitFor();

    // Signed in, the session lives in memory only.
    await expectLocalAndStateless();
    const logoutsBefore = privy.logouts;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').waitFor();
    await expect.poll(() => privy.logouts).toBe(logoutsBefore + 1);
    await expectLocalAndStateless();
  });

  it('a second sign-in with the same e-mail reaches the same account, with no new key', async () => {
    await open(g);
    const email = 'ada@example.com';
    const first = await signInWithPrivy(email);
    expect(first.is_new_user).toBe(true);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').waitFor();

    const again = await signInWithPrivy(email);
    expect(again.is_new_user).toBe(false);
    expect(again.user_id).toBe(first.user_id);
    expect(again.api_key).toBeUndefined();
    expect(await page.getByTestId('new-key').count()).toBe(0);
    await page.getByTestId('balance').filter({ hasText: '$3' }).waitFor();
    const users = await g.gw.db.db
      .selectFrom('users')
      .select('id')
      .where('privy_id', '=', privy.didOf(email)!)
      .execute();
    expect(users.map((u) => u.id)).toEqual([first.user_id]);
    await expectLocalAndStateless();
  });

  it('a wrong code shows an error and signs nobody in', async () => {
    await open(g);
    const email = 'mallory@example.com';
    await requestCode(email);
    const right = privy.lastCode(email)!;
    await enterCode(right === '000000' ? '111111' : '000000');
    await expect(page.getByRole('alert').textContent()).resolves.toMatch(/invalid/i);
    expect(await page.getByRole('navigation', { name: 'Main' }).count()).toBe(0);
    expect(seen.filter((s) => s.url.endsWith('/auth/privy'))).toEqual([]);
    expect(privy.didOf(email)).toBeUndefined();
    const rows = await g.gw.db.db.selectFrom('users').select('id').where('email', '=', email).execute();
    expect(rows).toEqual([]);
    await expectLocalAndStateless();
  });

  it('refreshes an expiring Privy token through the SDK and keeps working', async () => {
    privy.tokenTtlSeconds = 32; // the SDK treats a token as expired 30 s early
    try {
      await open(g);
      await signInWithPrivy('turing@example.com');
      await page.waitForTimeout(2500);
      const before = privy.refreshes;
      await navTo('Usage');
      await navTo('Overview');
      await page.getByTestId('balance').filter({ hasText: '$3' }).waitFor();
      expect(privy.refreshes).toBeGreaterThan(before);
      const bearers = new Set(
        seen.filter((s) => s.url.startsWith(`${g.url}/user/`)).map((s) => s.authorization),
      );
      expect(bearers.size).toBeGreaterThan(1);
      await expectLocalAndStateless();
    } finally {
      privy.tokenTtlSeconds = 3600;
    }
  });

  it('without Privy configured the sign-in page offers no Privy option and loads no SDK', async () => {
    const cfg = (await (await fetch(`${plain.url}/auth/config`)).json()) as any;
    expect(cfg).toEqual({ privy: null });
    await open(plain);
    // The page asked for the sign-in options and had time to render them.
    await page.waitForLoadState('networkidle');
    expect(seen.filter((s) => s.url.endsWith('/auth/config'))).toHaveLength(1);
    expect(await page.getByRole('heading', { name: 'Sign in with Privy' }).count()).toBe(0);
    expect(await page.getByLabel('E-mail', { exact: true }).count()).toBe(0);
    expect(seen.filter((s) => /\/assets\/esm-/.test(s.url))).toEqual([]);
    const csp = (await fetch(`${plain.url}/dashboard/`)).headers.get('content-security-policy')!;
    expect(csp).toContain("connect-src 'self';");
    const withPrivy = (await fetch(`${g.url}/dashboard/`)).headers.get('content-security-policy')!;
    expect(withPrivy).toContain(`connect-src 'self' ${privy.url};`);
    await expectLocalAndStateless();
  });
});
