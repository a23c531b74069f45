import { usd } from '../api.js';
import { Card, Chart, ErrorNote, html, Stat, useApi } from '../ui.js';

/** Daily series for the last 30 days from /user/usage?group_by=day (missing days are zero). */
export function dailySeries(rows: any[], days = 30) {
  const byDay = new Map(rows.map((r) => [r.day, r]));
  const x: number[] = [];
  const spend: number[] = [];
  const tokens: number[] = [];
  const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
  for (let i = days - 1; i >= 0; i--) {
    const t = today - i * 86_400_000;
    const d = new Date(t).toISOString().slice(0, 10);
    const r = byDay.get(d);
    x.push(t / 1000);
    spend.push(r?.spend_usd ?? 0);
    tokens.push(r?.total_tokens ?? 0);
  }
  return { x, spend, tokens };
}

export function Overview() {
  const bal = useApi('/user/balance');
  const trial = useApi('/trials/status');
  const plan = useApi('/user/plan');
  const usage = useApi('/user/usage?group_by=day&limit=60');
  const rows = usage.data?.data ?? [];
  const s = dailySeries(rows);
  const todayKey = new Date().toISOString().slice(0, 10);
  const month = todayKey.slice(0, 7);
  const spendToday = rows
    .filter((r: any) => r.day === todayKey)
    .reduce((a: number, r: any) => a + r.spend_usd, 0);
  const spendMonth = rows
    .filter((r: any) => String(r.day).startsWith(month))
    .reduce((a: number, r: any) => a + r.spend_usd, 0);
  return html`<div class="grid">
    <${Card} title="Balance">
      <${ErrorNote} error=${bal.error} />
      <div class="stats">
        <${Stat} label="Credits" value=${usd(bal.data?.credits)} testid="balance" />
        <${Stat} label="Available" value=${usd(bal.data?.available)} />
        <${Stat} label="Spend today" value=${usd(spendToday)} testid="spend-today" />
        <${Stat} label="Spend this month" value=${usd(spendMonth)} />
      </div>
    <//>
    <${Card} title="Plan and trial">
      <div class="stats">
        <${Stat} label="Plan" value=${plan.data?.plan?.name ?? plan.data?.name ?? plan.data?.plan_id ?? '—'} />
        <${Stat} label="Trial" value=${trial.data ? (trial.data.is_active ? `active until ${String(trial.data.end_date ?? '').slice(0, 10)}` : 'not active') : '—'} />
        <${Stat} label="Trial credits left" value=${usd(trial.data?.remaining_credits)} />
      </div>
    <//>
    <${Card} title="Spend and tokens, last 30 days">
      <${ErrorNote} error=${usage.error} />
      <${Chart} label="Daily spend in USD and tokens over the last 30 days" x=${s.x} series=${[
        { name: 'Spend (USD)', values: s.spend },
        { name: 'Tokens', values: s.tokens },
      ]} />
    <//>
  </div>`;
}
