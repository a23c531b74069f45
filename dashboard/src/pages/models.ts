import { useState } from 'preact/hooks';
import { currentKey, listOf, session } from '../api.js';
import { Card, ErrorNote, Field, html, Table, useApi } from '../ui.js';

/** Stream a chat completion through the gateway and show tokens as they arrive. */
async function streamChat(
  model: string,
  prompt: string,
  key: string,
  onText: (t: string) => void,
): Promise<any> {
  const res = await fetch('/v1/chat/completions', {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model,
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: prompt }],
    }),
  });
  if (!res.ok) throw new Error((await res.json()).error?.message ?? `HTTP ${res.status}`);
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = '';
  let usage = null;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i = buf.indexOf('\n\n');
    while (i >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      i = buf.indexOf('\n\n');
      const line = ev.split('\n').find((l) => l.startsWith('data: '));
      if (!line || line === 'data: [DONE]') continue;
      const j = JSON.parse(line.slice(6));
      if (j.error) throw new Error(j.error.message);
      const t = j.choices?.[0]?.delta?.content;
      if (t) onText(t);
      if (j.usage) usage = j.usage;
    }
  }
  return usage;
}

export function Models({ signedIn }: { signedIn: boolean }) {
  const [q, setQ] = useState('');
  const models = useApi(`/models?limit=500${q ? `&q=${encodeURIComponent(q)}` : ''}`);
  const rows = listOf(models.data).map((m: any) => ({
    ...m,
    prompt_per_m: m.pricing_per_million_usd?.prompt,
    completion_per_m: m.pricing_per_million_usd?.completion,
    providers: (m.providers ?? []).join(', '),
  }));
  const [model, setModel] = useState('');
  const [prompt, setPrompt] = useState('Say hello');
  const [out, setOut] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // Inference takes an API key: a Privy session types one in (its first key is offered).
  const signedInKey = currentKey();
  const [pgKey, setPgKey] = useState(session?.newApiKey ?? '');
  const run = async (e: Event) => {
    e.preventDefault();
    setOut('');
    setError(null);
    setBusy(true);
    try {
      let acc = '';
      const usage = await streamChat(model || rows[0]?.id, prompt, signedInKey ?? pgKey.trim(), (t) => {
        acc += t;
        setOut(acc);
      });
      if (usage) setOut(`${acc}\n\n— ${usage.total_tokens} tokens`);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="grid">
    ${
      signedIn
        ? html`<${Card} title="Playground">
      <form class="form" onSubmit=${run}>
        ${signedInKey ? null : html`<${Field} label="API key for the playground" name="pg-key" type="password" value=${pgKey} onInput=${setPgKey} required placeholder="gw_live_…" />`}
        <div class="field"><label for="pg-model">Model</label>
          <select id="pg-model" value=${model} onChange=${(e: Event) => setModel((e.target as HTMLSelectElement).value)}>
            ${rows.map((m: any) => html`<option value=${m.id}>${m.id}</option>`)}
          </select></div>
        <div class="field"><label for="pg-prompt">Prompt</label>
          <textarea id="pg-prompt" rows="3" value=${prompt} onInput=${(e: Event) => setPrompt((e.target as HTMLTextAreaElement).value)}></textarea></div>
        <button type="submit" disabled=${busy}>${busy ? 'Streaming…' : 'Send'}</button>
      </form>
      <pre class="output" data-testid="playground-output" aria-live="polite">${out}</pre>
      <${ErrorNote} error=${error} />
    <//>`
        : null
    }
    <${Card} title="Models">
      <div class="toolbar"><${Field} label="Search models" name="model-search" value=${q} onInput=${setQ} /></div>
      <${ErrorNote} error=${models.error} />
      <${Table} label="Model catalog" rows=${rows} columns=${[
        ['id', 'Model'],
        ['providers', 'Providers'],
        ['context_length', 'Context'],
        ['prompt_per_m', 'Prompt $/M'],
        ['completion_per_m', 'Completion $/M'],
      ]} />
    <//>
  </div>`;
}
