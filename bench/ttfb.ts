/**
 * Idle-path latency with µs resolution: one request at a time over keep-alive, targets interleaved
 * (order alternates each round). Stream: time to the first body byte and to the end ([DONE] checked);
 * JSON: time to the end. Also collects each response's `x-gatewayz-overhead-ms` header when present.
 *   --targets=<json array> --n=200 --warmup=20
 */
import http from 'node:http';
import { chatBody, emitResult, parseArgs, pct, type Target } from './lib.js';

const a = parseArgs();
const targets = JSON.parse(a.targets!) as Target[];
const N = Number(a.n ?? 200);
const WARM = Number(a.warmup ?? 20);
// Each mode has a time budget of its own (streams take ~93 ms each, JSON a few): with several targets,
// the streams running out of time must still leave the JSON requests theirs.
const budgetS = { stream: Number(a['max-s'] ?? 100), json: 30 };
const bodies = { stream: JSON.stringify(chatBody(true)), json: JSON.stringify(chatBody(false)) };
const agents = new Map(targets.map((t) => [t.name, new http.Agent({ keepAlive: true, maxSockets: 1 })]));

interface Sample {
  first: number;
  end: number;
  overhead: number | null;
}

function one(t: Target, mode: 'stream' | 'json'): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const ms = () => Number(process.hrtime.bigint() - t0) / 1e6;
    let first = Number.NaN;
    let tail = '';
    const req = http.request(
      `${t.base}/chat/completions`,
      {
        method: 'POST',
        agent: agents.get(t.name),
        headers: { 'content-type': 'application/json', ...t.headers },
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`${t.name} ${mode}: status ${res.statusCode}`));
          return;
        }
        const h = res.headers['x-gatewayz-overhead-ms'];
        const overhead = typeof h === 'string' ? Number(h) : null;
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (Number.isNaN(first)) first = ms();
          tail = (tail + c).slice(-64);
        });
        res.on('end', () => {
          if (mode === 'stream' && !tail.includes('[DONE]'))
            return reject(new Error(`${t.name}: stream ended without [DONE]`));
          resolve({ first, end: ms(), overhead });
        });
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(bodies[mode]);
  });
}

const out: Record<string, Record<string, number | null>> = {};
for (const mode of ['stream', 'json'] as const) {
  const acc = new Map(
    targets.map((t) => [t.name, { first: [] as number[], end: [] as number[], oh: [] as number[] }]),
  );
  for (let i = 0; i < WARM; i++) for (const t of targets) await one(t, mode);
  const deadline = Date.now() + budgetS[mode] * 1000;
  for (let i = 0; i < N && Date.now() < deadline; i++) {
    for (const t of i % 2 ? [...targets].reverse() : targets) {
      const s = await one(t, mode);
      const r = acc.get(t.name)!;
      r.first.push(s.first);
      r.end.push(s.end);
      if (s.overhead !== null && Number.isFinite(s.overhead)) r.oh.push(s.overhead);
    }
  }
  for (const [name, r] of acc) {
    for (const v of [r.first, r.end, r.oh]) v.sort((x, y) => x - y);
    out[`${name}/${mode}`] = {
      n: r.end.length,
      first_p50: pct(r.first, 50),
      first_p99: pct(r.first, 99),
      end_p50: pct(r.end, 50),
      end_p99: pct(r.end, 99),
      overhead_header_p50: r.oh.length ? pct(r.oh, 50) : null,
      overhead_header_p99: r.oh.length ? pct(r.oh, 99) : null,
    };
  }
}
for (const ag of agents.values()) ag.destroy();
emitResult(out);
