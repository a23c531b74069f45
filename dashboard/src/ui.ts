import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { api } from './api.js';

export { html };

/** Load an endpoint; `reload()` fetches again. Errors are shown, never thrown. */
export function useApi<T = any>(path: string | null, refreshMs = 0) {
  const [state, set] = useState<{ data: T | null; error: string | null; loading: boolean }>({
    data: null,
    error: null,
    loading: path !== null,
  });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (!path) return;
    let alive = true;
    api<T>(path)
      .then((data) => alive && set({ data, error: null, loading: false }))
      .catch((e) => alive && set({ data: null, error: (e as Error).message, loading: false }));
    const t = refreshMs ? setTimeout(() => setTick((x) => x + 1), refreshMs) : null;
    return () => {
      alive = false;
      if (t) clearTimeout(t);
    };
  }, [path, tick]);
  return { ...state, reload: () => setTick((x) => x + 1) };
}

export const Card = ({ title, children }: { title: string; children?: unknown }) =>
  html`<section class="card" aria-label=${title}><h2>${title}</h2>${children}</section>`;

export const Stat = ({ label, value, testid }: { label: string; value: unknown; testid?: string }) =>
  html`<div class="stat"><div class="stat-label">${label}</div><div class="stat-value" data-testid=${testid}>${value}</div></div>`;

export const ErrorNote = ({ error }: { error: string | null }) =>
  error ? html`<p class="error" role="alert">${error}</p>` : null;

function cell(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** A table of objects; columns are [key, label] pairs, shown when the data has them. */
export function Table({
  rows,
  columns,
  actions,
  label,
}: {
  rows: any[];
  columns: Array<[string, string]>;
  actions?: (r: any) => unknown;
  label: string;
}) {
  const cols = columns.filter(([k]) => rows.some((r) => r && k in r));
  if (!rows.length) return html`<p class="muted">Nothing yet.</p>`;
  return html`<div class="table-wrap"><table aria-label=${label}>
    <thead><tr>${cols.map(([, l]) => html`<th scope="col">${l}</th>`)}${actions ? html`<th scope="col">Actions</th>` : null}</tr></thead>
    <tbody>${rows.map((r) => html`<tr>${cols.map(([k]) => html`<td>${cell(r[k])}</td>`)}${actions ? html`<td class="actions">${actions(r)}</td>` : null}</tr>`)}</tbody>
  </table></div>`;
}

/** A uPlot line chart: x = unix seconds, series by name. */
export function Chart({
  x,
  series,
  label,
}: {
  x: number[];
  series: Array<{ name: string; values: number[] }>;
  label: string;
}) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!ref.current) return;
    const width = Math.max(280, ref.current.clientWidth || 600);
    const colors = ['#4f46e5', '#059669', '#d97706'];
    const plot = new uPlot(
      {
        width,
        height: 220,
        series: [
          {},
          ...series.map((s, i) => ({
            label: s.name,
            stroke: colors[i % 3],
            width: 2,
            scale: i === 0 ? 'y' : 'y2',
          })),
        ],
        axes: [
          {},
          {
            scale: 'y',
            size: 70,
            values: (_u: uPlot, vals: number[]) =>
              vals.map((v) => (v < 0.01 && v > 0 ? v.toExponential(1) : String(+v.toFixed(4)))),
          },
          ...(series.length > 1 ? [{ scale: 'y2', side: 1 }] : []),
        ],
      },
      [x, ...series.map((s) => s.values)] as uPlot.AlignedData,
      ref.current,
    );
    return () => plot.destroy();
  }, [JSON.stringify(x), JSON.stringify(series)]);
  return html`<div class="chart" role="img" aria-label=${label} data-testid="chart" data-points=${series[0]?.values.filter((v) => v > 0).length ?? 0} ref=${ref}></div>`;
}

export function Field({ label, name, type = 'text', value, onInput, required, placeholder }: any) {
  const id = `f-${name}`;
  return html`<div class="field"><label for=${id}>${label}</label>
    <input id=${id} name=${name} type=${type} value=${value} required=${required} placeholder=${placeholder}
      autocomplete=${type === 'password' ? 'off' : undefined}
      onInput=${(e: Event) => onInput((e.target as HTMLInputElement).value)} /></div>`;
}

/** Show a secret once, with a copy button. */
export function Secret({ value }: { value: string }) {
  const [copied, setCopied] = useState(false);
  return html`<div class="secret" role="status"><p>Copy this key now — it will not be shown again.</p>
    <code data-testid="new-key">${value}</code>
    <button type="button" onClick=${() => navigator.clipboard?.writeText(value).then(() => setCopied(true))}>${copied ? 'Copied' : 'Copy'}</button></div>`;
}

export function toCsv(rows: any[]): string {
  if (!rows.length) return '';
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const esc = (v: unknown) => {
    const s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [keys.join(','), ...rows.map((r) => keys.map((k) => esc(r[k])).join(','))].join('\n');
}
