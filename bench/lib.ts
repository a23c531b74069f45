/** Small helpers shared by the bench processes (no dependencies beyond node). */
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';

export interface Target {
  name: string;
  /** Base of the OpenAI-compatible API, including /v1. Always loopback. */
  base: string;
  headers: Record<string, string>;
}

/** `--a=1 --b` → {a:'1', b:'true'} */
export function parseArgs(argv = process.argv.slice(2)): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    if (eq >= 0) out[a.slice(2, eq)] = a.slice(eq + 1);
    else if (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--')) out[a.slice(2)] = argv[++i]!;
    else out[a.slice(2)] = 'true';
  }
  return out;
}

export function loadTarget(json: string): Target {
  const t = JSON.parse(json) as Target;
  const host = new URL(t.base).hostname;
  if (!host.startsWith('127.') && host !== 'localhost')
    throw new Error(`refusing non-loopback target ${t.base}`);
  return t;
}

export const chatBody = (stream: boolean, model = 'gpt-4o-mini') => {
  const b: Record<string, unknown> = {
    model,
    messages: [
      { role: 'system', content: 'You are a concise assistant used for gateway benchmarking.' },
      { role: 'user', content: 'x'.repeat(200) },
    ],
    max_tokens: 64,
    temperature: 0,
  };
  if (stream) {
    b.stream = true;
    b.stream_options = { include_usage: true };
  }
  return b;
};

/** Percentile of an ascending array (nearest rank). */
export const pct = (sorted: number[], p: number): number =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : Number.NaN;

export const fmt = (x: number | null | undefined, d = 2): string =>
  x === null || x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d);

/** A process and its descendants (a gateway started through a shell or npx has children). */
export function treePids(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const tid of readdirSync(`/proc/${out[i]}/task`)) {
        try {
          for (const k of readFileSync(`/proc/${out[i]}/task/${tid}/children`, 'utf8').split(/\s+/))
            if (k) out.push(Number(k));
        } catch {}
      }
    } catch {}
  }
  return out;
}

/** Resident memory of a process tree in KiB (0 when unknown). */
export function rssKb(pid: number | null | undefined): number {
  if (!pid) return 0;
  let t = 0;
  for (const p of treePids(pid)) {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) t += Number(m[1]);
    } catch {}
  }
  return t;
}

export const CLK_TCK = 100;
/** CPU ticks (user + system) of a process tree. */
export function cpuTicks(pid: number | null | undefined): number {
  if (!pid) return 0;
  let t = 0;
  for (const p of treePids(pid)) {
    try {
      const s = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      t += Number(f[11]) + Number(f[12]);
    } catch {}
  }
  return t;
}

/** CPU time of a process tree in ns (every live thread's, from schedstat: finer than `cpuTicks`' 10 ms). */
export function cpuNs(pid: number | null | undefined): number {
  if (!pid) return 0;
  let t = 0;
  for (const p of treePids(pid)) {
    try {
      for (const tid of readdirSync(`/proc/${p}/task`)) {
        try {
          t += Number(readFileSync(`/proc/${p}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
        } catch {}
      }
    } catch {}
  }
  return t;
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request with a deadline, no keep-alive (control traffic, not measured). */
export function httpJson(
  url: string,
  opts: { method?: string; body?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: opts.method ?? 'GET',
        agent: false,
        headers: { 'content-type': 'application/json', ...(opts.headers ?? {}) },
      },
      (res) => {
        let d = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          d += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: d }));
        res.on('error', reject);
      },
    );
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error(`timeout: ${url}`)));
    req.on('error', reject);
    req.end(opts.body === undefined ? undefined : JSON.stringify(opts.body));
  });
}

/** The child prints exactly one line starting with this marker, followed by its JSON result. */
export const RESULT_MARK = '@@result ';
export function emitResult(r: unknown): void {
  process.stdout.write(`${RESULT_MARK}${JSON.stringify(r)}\n`);
}
