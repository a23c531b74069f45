import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { session, signIn, signOut } from './api.js';
import { AuditLog, Chats, Referral } from './pages/account.js';
import { Commerce, Monitor, Providers, Users } from './pages/admin.js';
import { Credits } from './pages/credits.js';
import { Keys } from './pages/keys.js';
import { Models } from './pages/models.js';
import { Overview } from './pages/overview.js';
import { Usage } from './pages/usage.js';
import './style.css';
import { ErrorNote, Field, html } from './ui.js';

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
    <p><a href="#/models">Browse models</a></p>
  </main>`;
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
      ${allowed(page) ? page.view() : html`<p class="error" role="alert" data-testid="forbidden">You do not have access to this page.</p>`}
    </main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app')!);
