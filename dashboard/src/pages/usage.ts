import { useState } from 'preact/hooks';
import { Card, Chart, ErrorNote, html, Table, toCsv, useApi } from '../ui.js';
import { dailySeries } from './overview.js';

export function Usage() {
  const [groupBy, setGroupBy] = useState('model');
  const daily = useApi('/user/usage?group_by=day&limit=60');
  const grouped = useApi(`/user/usage?group_by=${groupBy}&limit=200`);
  const s = dailySeries(daily.data?.data ?? []);
  const rows = grouped.data?.data ?? [];
  const download = () => {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([toCsv(rows)], { type: 'text/csv' }));
    a.download = `usage-by-${groupBy}.csv`;
    a.click();
  };
  return html`<div class="grid">
    <${Card} title="Daily usage">
      <${Chart} label="Daily spend and tokens" x=${s.x} series=${[{ name: 'Spend (USD)', values: s.spend }, { name: 'Tokens', values: s.tokens }]} />
    <//>
    <${Card} title="Usage breakdown">
      <div class="toolbar">
        <label for="group">Group by </label>
        <select id="group" value=${groupBy} onChange=${(e: Event) => setGroupBy((e.target as HTMLSelectElement).value)}>
          <option value="model">model</option><option value="key">key</option><option value="provider">provider</option><option value="day">day</option>
        </select>
        <button type="button" onClick=${download}>Export CSV</button>
      </div>
      <${ErrorNote} error=${grouped.error} />
      <${Table} label="Usage" rows=${rows} columns=${[
        [groupBy, groupBy],
        ['requests', 'Requests'],
        ['prompt_tokens', 'Prompt tokens'],
        ['completion_tokens', 'Completion tokens'],
        ['spend_usd', 'Spend (USD)'],
        ['errors', 'Errors'],
      ]} />
    <//>
  </div>`;
}
