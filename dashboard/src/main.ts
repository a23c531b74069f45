import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, session, signIn, signInWithPrivy, signOut } from './api.js';
import { AuditLog, Chats, Referral } from './pages/account.js';
import { Commerce, Monitor, Providers, Users } from './pages/admin.js';
import { Credits } from './pages/credits.js';
import { Keys } from './pages/keys.js';
import { Models } from './pages/models.js';
import { Overview } from './pages/overview.js';
import { Usage } from './pages/usage.js';
import { type PrivyConfig, privyClient } from './privy.js';
import './style.css';
import { Card, ErrorNote, Field, html, Secret } from './ui.js';

interface Page {
  path: string;
  title: string;
  view: () => unknown;
  who: 'user' | 'admin' | 'any';
}

const PAGES: Page[] = [
  { path: 'overview', title: 'Overview', view: () => html`<${Overview} />`, who: 'user' },
  { path: 'keys', title: 'API keys', view: () => html`<${Keys} />`, who: 'user' },
  { path: 'usage', title: 'Usage', view: () => html`<${Usage} />`, who: 'user' },
  { path: 'credits', title: 'Credits', view: () => html`<${Credits} />`, who: 'user' },
  { path: 'chats', title: 'Chats', view: () => html`<${Chats} />`, who: 'user' },
  { path: 'referral', title: 'Referral & notifications', view: () => html`<${Referral} />`, who: 'user' },
  { path: 'models', title: 'Models', view: () => html`<${Models} signedIn=${true} />`, who: 'any' },
  { path: 'admin/monitor', title: 'Monitor', view: () => html`<${Monitor} />`, who: 'admin' },
  { path: 'admin/users', title: 'Users', view: () => html`<${Users} />`, who: 'admin' },
  {
    path: 'admin/providers',
    title: 'Providers & rankings',
    view: () => html`<${Providers} />`,
    who: 'admin',
  },
  { path: 'admin/commerce', title: 'Coupons & plans', view: () => html`<${Commerce} />`, who: 'admin' },
  { path: 'admin/audit', title: 'Audit log', view: () => html`<${AuditLog} admin=${true} />`, who: 'admin' },
];

const route = () => location.hash.replace(/^#\/?/, '') || 'overview';

function allowed(p: Page): boolean {
  if (!session) return false;
  if (p.who === 'admin') return session.isAdmin;
  if (p.who === 'user') return session.isUser;
  return true;
}

function SignIn({ onDone }: { onDone: () => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [privy, setPrivy] = useState<PrivyConfig | null>(null);
  useEffect(() => {
    api('/auth/config')
      .then((c) => setPrivy(c?.privy ?? null))
      .catch(() => setPrivy(null));
  }, []);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const s = await signIn(key);
      if (!s.isUser && s.isAdmin) location.hash = '#/admin/monitor';
      onDone();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return html`<main class="signin">
    <h1>Gatewayz</h1>
    <form class="form card" onSubmit=${submit} aria-label="Sign in">
      <${Field} label="API key" name="api_key" type="password" value=${key} onInput=${setKey} required placeholder="gw_live_…" />
      <button type="submit">Sign in</button>
      <p class="muted">Your key stays in this tab's memory only; reloading signs you out.</p>
      <${ErrorNote} error=${error} />
    </form>
    ${privy ? html`<${PrivySignIn} config=${privy} onDone=${onDone} />` : null}
    <p><a href="#/models">Browse models</a></p>
  </main>`;
}

/** E-mail → one-time code → signed in with Privy (the account is created on the first sign-in). */
function PrivySignIn({ config, onDone }: { config: PrivyConfig; onDone: () => void }) {
  const [email, setEmail] = useState('');
  const [code, setCode] = useState('');
  const [sentTo, setSentTo] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const codeField = useRef<HTMLInputElement>(null);
  // Keyboard and screen-reader users land on the code field once the code is sent.
  useEffect(() => {
    if (sentTo) codeField.current?.focus();
  }, [sentTo]);
  const run = async (e: Event, step: () => Promise<void>) => {
    e.preventDefault();
    setError(null);
    setBusy(true);
    try {
      await step();
    } catch (err) {
      setError((err as Error).message || 'Privy sign-in failed');
    } finally {
      setBusy(false);
    }
  };
  const sendCode = (e: Event) =>
    run(e, async () => {
      const client = await privyClient(config);
      await client.sendCode(email.trim());
      setSentTo(email.trim());
      setCode('');
    });
  const verify = (e: Event) =>
    run(e, async () => {
      const client = await privyClient(config);
      await client.loginWithCode(sentTo!, code.trim());
      const s = await signInWithPrivy(client, sentTo!);
      if (!s.isUser && s.isAdmin) location.hash = '#/admin/monitor';
      onDone();
    });
  return html`<section class="card form" aria-labelledby="privy-title">
    <h2 id="privy-title">Sign in with Privy</h2>
    ${
      sentTo
        ? html`<form onSubmit=${verify} class="form" aria-label="Enter the code">
          <p class="muted" aria-live="polite" data-testid="privy-sent">We sent a code to ${sentTo}.</p>
          <div class="field"><label for="f-privy-code">Code from the e-mail</label>
            <input id="f-privy-code" name="code" inputmode="numeric" autocomplete="one-time-code" required ref=${codeField}
              value=${code} onInput=${(e: Event) => setCode((e.target as HTMLInputElement).value)} /></div>
          <button type="submit" disabled=${busy}>${busy ? 'Checking…' : 'Verify code'}</button>
          <button type="button" class="link" onClick=${() => {
            setSentTo(null);
            setError(null);
          }}>Use another e-mail</button>
        </form>`
        : html`<form onSubmit=${sendCode} class="form" aria-label="Request a sign-in code">
          <div class="field"><label for="f-privy-email">E-mail</label>
            <input id="f-privy-email" name="email" type="email" autocomplete="email" required
              value=${email} onInput=${(e: Event) => setEmail((e.target as HTMLInputElement).value)} /></div>
          <button type="submit" disabled=${busy}>${busy ? 'Sending…' : 'Send code'}</button>
          <p class="muted">A new e-mail address creates an account.</p>
        </form>`
    }
    <${ErrorNote} error=${error} />
  </section>`;
}

/** The API key a Privy sign-up created: shown once, until dismissed. */
function NewKey({ onClose }: { onClose: () => void }) {
  const value = session?.newApiKey;
  if (!value) return null;
  return html`<div class="notice"><${Card} title="Your first API key">
    <p>Your account was created. Use this key for API calls (the dashboard itself signs you in with Privy).</p>
    <${Secret} value=${value} />
    <button type="button" onClick=${() => {
      if (session) session.newApiKey = null;
      onClose();
    }}>I have saved it</button>
  <//></div>`;
}

function App() {
  const [path, setPath] = useState(route());
  const [, force] = useState(0);
  useEffect(() => {
    const on = () => setPath(route());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  if (!session) {
    if (path === 'models')
      return html`<main class="content"><p><a href="#/overview">Sign in</a></p><${Models} signedIn=${false} /></main>`;
    return html`<${SignIn} onDone=${() => force((x) => x + 1)} />`;
  }
  const page = PAGES.find((p) => p.path === path) ?? PAGES[0]!;
  const visible = PAGES.filter(allowed);
  return html`<div class="layout">
    <a class="skip" href="#main">Skip to content</a>
    <nav aria-label="Main">
      <div class="brand">Gatewayz</div>
      <ul>
        ${visible.map((p) => html`<li><a href=${`#/${p.path}`} aria-current=${p === page ? 'page' : undefined}>${p.title}</a></li>`)}
      </ul>
      <button type="button" class="signout" onClick=${() => {
        signOut();
        location.hash = '#/overview';
        force((x) => x + 1);
      }}>Sign out</button>
    </nav>
    <main id="main" class="content" tabindex="-1">
      <h1>${page.title}</h1>
      <${NewKey} onClose=${() => force((x) => x + 1)} />
      ${allowed(page) ? page.view() : html`<p class="error" role="alert" data-testid="forbidden">You do not have access to this page.</p>`}
    </main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app')!);
