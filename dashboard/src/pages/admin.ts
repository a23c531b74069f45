import { useState } from 'preact/hooks';
import { api, listOf, usd } from '../api.js';
import { Card, ErrorNote, Field, html, Stat, Table, useApi } from '../ui.js';

const num = (v: unknown) => (typeof v === 'number' ? v.toLocaleString('en-US') : '—');

export function Monitor() {
  const m = useApi('/admin/monitor', 5000);
  const d = m.data ?? {};
  const today = d.today ?? d;
  const month = d.month ?? {};
  const live = d.live ?? {};
  return html`<div class="grid">
    <${Card} title="Last 5 minutes (refreshes every 5 s)">
      <${ErrorNote} error=${m.error} />
      <div class="stats">
        <${Stat} label="Requests" value=${num(live.requests)} testid="live-requests" />
        <${Stat} label="Requests / s" value=${live.requests_per_second ?? '—'} />
        <${Stat} label="Error rate" value=${typeof live.error_rate === 'number' ? `${(live.error_rate * 100).toFixed(2)}%` : '—'} />
        <${Stat} label="Latency p50 / p99" value=${live.latency_p50_ms != null ? `${live.latency_p50_ms} / ${live.latency_p99_ms} ms` : '—'} />
        <${Stat} label="Spend" value=${usd(live.spend_usd)} />
      </div>
    <//>
    <${Card} title="Today and this month">
      <div class="stats">
        <${Stat} label="Requests today" value=${num(today.requests)} testid="monitor-requests" />
        <${Stat} label="Tokens today" value=${num(today.tokens ?? today.total_tokens)} />
        <${Stat} label="Spend today" value=${usd(today.spend_usd ?? today.spend)} />
        <${Stat} label="Error rate today" value=${typeof today.error_rate === 'number' ? `${(today.error_rate * 100).toFixed(2)}%` : '—'} />
        <${Stat} label="Users" value=${num(today.users)} />
        <${Stat} label="Requests this month" value=${num(month.requests)} />
        <${Stat} label="Spend this month" value=${usd(month.spend_usd ?? month.spend)} />
      </div>
    <//>
    <${Card} title="Top models today">
      <${Table} label="Top models" rows=${d.top_models ?? today.top_models ?? []} columns=${[['model', 'Model'], ['requests', 'Requests'], ['spend_usd', 'Spend (USD)']]} />
    <//>
  </div>`;
}

export function Users() {
  const [q, setQ] = useState('');
  const users = useApi(`/admin/users?limit=100${q ? `&search=${encodeURIComponent(q)}` : ''}`);
  const [credit, setCredit] = useState<{ id: string; amount: string } | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const act = async (fn: () => Promise<any>, msg: string) => {
    try {
      await fn();
      setNote(msg);
      users.reload();
    } catch (e) {
      setNote((e as Error).message);
    }
  };
  return html`<${Card} title="Users">
    <div class="toolbar"><${Field} label="Search users" name="user-search" value=${q} onInput=${setQ} /></div>
    ${note ? html`<p class="ok" role="status" data-testid="admin-note">${note}</p>` : null}
    <${ErrorNote} error=${users.error} />
    ${
      credit
        ? html`<form class="form inline" aria-label="Add credits to user" onSubmit=${(e: Event) => {
            e.preventDefault();
            act(
              () =>
                api('/admin/add_credits', {
                  body: { user_id: credit.id, credits: Number(credit.amount), reason: 'dashboard' },
                }),
              'Credits added',
            );
            setCredit(null);
          }}>
        <${Field} label=${`Credits to add for ${credit.id}`} name="credit-amount" type="number" value=${credit.amount} onInput=${(v: string) => setCredit({ ...credit, amount: v })} required />
        <button type="submit">Add credits</button></form>`
        : null
    }
    <${Table} label="Users" rows=${listOf(users.data)} columns=${[
      ['id', 'Id'],
      ['user_id', 'Id'],
      ['email', 'Email'],
      ['username', 'Username'],
      ['role', 'Role'],
      ['status', 'Status'],
      ['credits', 'Credits'],
    ]} actions=${(u: any) => {
      const id = u.id ?? u.user_id;
      return html`<button type="button" onClick=${() => setCredit({ id, amount: '10' })}>Add credits</button>
        <button type="button" onClick=${() => act(() => api(`/admin/users/${id}`, { method: 'PATCH', body: { status: u.status === 'suspended' ? 'active' : 'suspended' } }), 'Status changed')}>${u.status === 'suspended' ? 'Unsuspend' : 'Suspend'}</button>
        <button type="button" onClick=${() => act(() => api(`/admin/users/${id}`, { method: 'PATCH', body: { role: u.role === 'admin' ? 'user' : 'admin' } }), 'Role changed')}>${u.role === 'admin' ? 'Make user' : 'Make admin'}</button>`;
    }} />
  <//>`;
}

export function Providers() {
  const p = useApi('/models/providers', 10_000);
  const r = useApi('/ranking/models');
  const [syncing, setSyncing] = useState<string | null>(null);
  const sync = async () => {
    setSyncing('Syncing…');
    try {
      await api('/admin/catalog/sync', { body: {} });
      setSyncing('Catalogs synced');
      p.reload();
    } catch (e) {
      setSyncing((e as Error).message);
    }
  };
  return html`<div class="grid">
    <${Card} title="Providers">
      <div class="toolbar"><button type="button" onClick=${sync}>Sync catalogs now</button>
        ${syncing ? html`<span role="status" data-testid="sync-status">${syncing}</span>` : null}</div>
      <${ErrorNote} error=${p.error} />
      <${Table} label="Providers" rows=${listOf(p.data)} columns=${[
        ['name', 'Provider'],
        ['enabled', 'Enabled'],
        ['status', 'Status'],
        ['breaker', 'Breaker'],
        ['circuit', 'Breaker'],
        ['model_count', 'Models'],
        ['last_sync_at', 'Last sync'],
        ['last_error', 'Last error'],
      ]} />
    <//>
    <${Card} title="Model rankings">
      <${ErrorNote} error=${r.error} />
      <${Table} label="Model rankings" rows=${listOf(r.data)} columns=${[
        ['rank', '#'],
        ['model', 'Model'],
        ['requests', 'Requests'],
        ['tokens', 'Tokens'],
        ['users', 'Users'],
        ['median_latency_ms', 'Median latency'],
        ['error_rate', 'Error rate'],
      ]} />
    <//>
  </div>`;
}

export function Commerce() {
  const coupons = useApi('/admin/coupons');
  const plans = useApi('/plans');
  const [c, setC] = useState({ code: '', value_usd: '5', max_uses: '100' });
  const [note, setNote] = useState<string | null>(null);
  const create = async (e: Event) => {
    e.preventDefault();
    try {
      await api('/admin/coupons', {
        body: { code: c.code, kind: 'credit', value: Number(c.value_usd), max_uses: Number(c.max_uses) },
      });
      setNote('Coupon created');
      coupons.reload();
    } catch (err) {
      setNote((err as Error).message);
    }
  };
  return html`<div class="grid">
    <${Card} title="Coupons">
      <form class="form inline" onSubmit=${create}>
        <${Field} label="Code" name="coupon-code" value=${c.code} onInput=${(v: string) => setC({ ...c, code: v })} required />
        <${Field} label="Value (USD)" name="coupon-value" type="number" value=${c.value_usd} onInput=${(v: string) => setC({ ...c, value_usd: v })} />
        <${Field} label="Max uses" name="coupon-uses" type="number" value=${c.max_uses} onInput=${(v: string) => setC({ ...c, max_uses: v })} />
        <button type="submit">Create coupon</button>
      </form>
      ${note ? html`<p role="status">${note}</p>` : null}
      <${ErrorNote} error=${coupons.error} />
      <${Table} label="Coupons" rows=${listOf(coupons.data)} columns=${[
        ['code', 'Code'],
        ['kind', 'Kind'],
        ['value', 'Value'],
        ['uses', 'Uses'],
        ['max_uses', 'Max uses'],
        ['valid_until', 'Valid until'],
      ]} />
    <//>
    <${Card} title="Plans">
      <${ErrorNote} error=${plans.error} />
      <${Table} label="Plans" rows=${listOf(plans.data)} columns=${[
        ['id', 'Id'],
        ['name', 'Name'],
        ['price_per_month', 'Per month (USD)'],
        ['monthly_credits', 'Credits / month (USD)'],
        ['daily_request_limit', 'Requests / day'],
        ['max_concurrent_requests', 'Concurrency'],
      ]} />
    <//>
  </div>`;
}
