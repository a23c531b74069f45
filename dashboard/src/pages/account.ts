import { useEffect, useState } from 'preact/hooks';
import { api, listOf } from '../api.js';
import { Card, ErrorNote, html, Stat, Table, useApi } from '../ui.js';

export function Chats() {
  const sessions = useApi('/chat/sessions');
  return html`<${Card} title="Chat sessions">
    <${ErrorNote} error=${sessions.error} />
    <${Table} label="Chat sessions" rows=${listOf(sessions.data)} columns=${[
      ['title', 'Title'],
      ['model', 'Model'],
      ['message_count', 'Messages'],
      ['updated_at', 'Last activity'],
    ]} />
  <//>`;
}

export function Referral() {
  const code = useApi('/referral/code');
  const stats = useApi('/referral/stats');
  const prefs = useApi('/user/notifications/preferences');
  const [draft, setDraft] = useState<Record<string, any> | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  useEffect(() => {
    if (prefs.data) setDraft(prefs.data.preferences ?? prefs.data);
  }, [prefs.data]);
  const save = async (e: Event) => {
    e.preventDefault();
    try {
      await api('/user/notifications/preferences', { method: 'PUT', body: draft });
      setSaved('Saved');
    } catch (err) {
      setSaved((err as Error).message);
    }
  };
  return html`<div class="grid">
    <${Card} title="Referral">
      <${ErrorNote} error=${code.error} />
      <div class="stats">
        <${Stat} label="Your code" value=${code.data?.referral_code ?? code.data?.code ?? '—'} />
        <${Stat} label="Referred users" value=${stats.data?.total_referrals ?? stats.data?.referred_users ?? '—'} />
        <${Stat} label="Rewards earned" value=${stats.data?.rewards_earned_usd ?? stats.data?.total_rewards ?? '—'} />
      </div>
    <//>
    <${Card} title="Notification preferences">
      <${ErrorNote} error=${prefs.error} />
      ${
        draft
          ? html`<form class="form" onSubmit=${save}>
          ${Object.entries(draft)
            .filter(([, v]) => typeof v === 'boolean' || typeof v === 'number')
            .map(
              ([k, v]) => html`<label class="field check" for=${`p-${k}`}>
                <input id=${`p-${k}`} type=${typeof v === 'boolean' ? 'checkbox' : 'number'} checked=${v === true} value=${typeof v === 'number' ? v : undefined}
                  onChange=${(e: Event) => {
                    const t = e.target as HTMLInputElement;
                    setDraft({ ...draft, [k]: typeof v === 'boolean' ? t.checked : Number(t.value) });
                  }} />
                <span>${k.replace(/_/g, ' ')}</span></label>`,
            )}
          <button type="submit">Save</button> ${saved}
        </form>`
          : null
      }
    <//>
  </div>`;
}

export function AuditLog({ admin }: { admin: boolean }) {
  const [filter, setFilter] = useState('');
  const logs = useApi(
    `${admin ? '/admin/audit-logs' : '/user/audit-logs'}?limit=100${filter ? `&action=${encodeURIComponent(filter)}` : ''}`,
  );
  return html`<${Card} title="Audit log">
    <div class="toolbar"><label for="audit-action">Action </label>
      <input id="audit-action" value=${filter} placeholder="e.g. credits.add" onChange=${(e: Event) => setFilter((e.target as HTMLInputElement).value)} /></div>
    <${ErrorNote} error=${logs.error} />
    <${Table} label="Audit log" rows=${listOf(logs.data)} columns=${[
      ['at', 'When'],
      ['created_at', 'When'],
      ['actor', 'Actor'],
      ['user_id', 'User'],
      ['action', 'Action'],
      ['resource_type', 'Resource'],
      ['resource_id', 'Id'],
      ['ip', 'IP'],
      ['details', 'Details'],
    ]} />
  <//>`;
}
