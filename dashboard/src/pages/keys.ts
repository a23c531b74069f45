import { useState } from 'preact/hooks';
import { api, listOf } from '../api.js';
import { Card, ErrorNote, Field, html, Secret, Table, useApi } from '../ui.js';

const split = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

export function Keys() {
  const keys = useApi('/user/api-keys');
  const [form, setForm] = useState({
    key_name: '',
    environment_tag: 'live',
    expiration_days: '',
    max_requests: '',
    ip_allowlist: '',
    domain_referrers: '',
    allowed_models: '',
    max_spend_usd: '',
  });
  const [secret, setSecret] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const set = (k: string) => (v: string) => setForm({ ...form, [k]: v });

  const create = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const body: Record<string, unknown> = {
        key_name: form.key_name,
        environment_tag: form.environment_tag,
      };
      if (form.expiration_days) body.expiration_days = Number(form.expiration_days);
      if (form.max_requests) body.max_requests = Number(form.max_requests);
      if (form.max_spend_usd) body.max_spend_usd = Number(form.max_spend_usd);
      if (form.ip_allowlist) body.ip_allowlist = split(form.ip_allowlist);
      if (form.domain_referrers) body.domain_referrers = split(form.domain_referrers);
      if (form.allowed_models) body.allowed_models = split(form.allowed_models);
      const r = await api('/user/api-keys', { body });
      setSecret(r.api_key ?? r.key ?? null);
      keys.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const act = async (fn: () => Promise<any>, showSecret = false) => {
    setError(null);
    try {
      const r = await fn();
      if (showSecret) setSecret(r.api_key ?? r.new_api_key ?? r.key ?? null);
      keys.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return html`<div class="grid">
    <${Card} title="Create an API key">
      <form onSubmit=${create} class="form">
        <${Field} label="Name" name="key_name" value=${form.key_name} onInput=${set('key_name')} required />
        <div class="field"><label for="f-env">Environment</label>
          <select id="f-env" value=${form.environment_tag} onChange=${(e: Event) => set('environment_tag')((e.target as HTMLSelectElement).value)}>
            <option value="live">live</option><option value="test">test</option><option value="staging">staging</option><option value="development">development</option>
          </select></div>
        <${Field} label="Expires in days" name="expiration_days" type="number" value=${form.expiration_days} onInput=${set('expiration_days')} />
        <${Field} label="Max requests" name="max_requests" type="number" value=${form.max_requests} onInput=${set('max_requests')} />
        <${Field} label="Max spend (USD)" name="max_spend_usd" type="number" value=${form.max_spend_usd} onInput=${set('max_spend_usd')} />
        <${Field} label="IP allowlist (comma-separated)" name="ip_allowlist" value=${form.ip_allowlist} onInput=${set('ip_allowlist')} />
        <${Field} label="Allowed domains" name="domain_referrers" value=${form.domain_referrers} onInput=${set('domain_referrers')} />
        <${Field} label="Allowed models" name="allowed_models" value=${form.allowed_models} onInput=${set('allowed_models')} />
        <button type="submit">Create key</button>
      </form>
      ${secret ? html`<${Secret} value=${secret} />` : null}
      <${ErrorNote} error=${error} />
    <//>
    <${Card} title="Your API keys">
      <${ErrorNote} error=${keys.error} />
      <${Table} label="API keys" rows=${listOf(keys.data)} columns=${[
        ['key_name', 'Name'],
        ['name', 'Name'],
        ['prefix', 'Key'],
        ['api_key_prefix', 'Key'],
        ['environment_tag', 'Environment'],
        ['is_active', 'Active'],
        ['requests_used', 'Requests'],
        ['request_count', 'Requests'],
        ['last_used_at', 'Last used'],
        ['expires_at', 'Expires'],
      ]} actions=${(k: any) => html`
        <button type="button" onClick=${() => act(() => api(`/user/api-keys/${k.id}/rotate`, { body: {} }), true)}>Rotate</button>
        <button type="button" onClick=${() => act(() => api(`/user/api-keys/${k.id}`, { method: 'PUT', body: { is_active: !k.is_active } }))}>${k.is_active ? 'Disable' : 'Enable'}</button>
        <button type="button" class="danger" onClick=${() => confirm('Revoke this key?') && act(() => api(`/user/api-keys/${k.id}`, { method: 'DELETE', body: { confirmation: 'DELETE_KEY' } }))}>Revoke</button>`} />
    <//>
  </div>`;
}
