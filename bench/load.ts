/**
 * One autocannon cell against one target (run as its own process, pinned next to the mock):
 *   --target=<json> --mode=json|stream --conns=32 --duration=10 --warmup=2 [--rate=0] [--gw-pid=N] --mock=URL
 * Prints one result line (see lib.ts RESULT_MARK).
 */
import { createRequire } from 'node:module';
import { CLK_TCK, chatBody, cpuTicks, emitResult, httpJson, loadTarget, parseArgs, pct } from './lib.js';

const require = createRequire(import.meta.url);
// autocannon ships no types; its result shape is used as documented.
const autocannon = require('autocannon') as (opts: Record<string, unknown>) => Promise<any>;

const a = parseArgs();
const target = loadTarget(a.target!);
const mode = a.mode === 'stream' ? 'stream' : 'json';
const conns = Number(a.conns ?? 32);
const duration = Number(a.duration ?? 10);
const warmup = Number(a.warmup ?? 2);
const rate = Number(a.rate ?? 0);
const gwPid = a['gw-pid'] ? Number(a['gw-pid']) : null;
const body = JSON.stringify(chatBody(mode === 'stream'));

const opts = (d: number) => ({
  url: `${target.base}/chat/completions`,
  method: 'POST',
  headers: { 'content-type': 'application/json', ...target.headers },
  body,
  connections: conns,
  duration: d,
  timeout: 10,
  ...(rate > 0 ? { overallRate: rate } : {}),
  setupClient,
});

// Per response: status histogram (to name what a non-2xx was) and the gateway's own overhead header.
let measuring = false;
const statuses: Record<string, number> = {};
const overhead: number[] = [];
function setupClient(client: {
  on(ev: 'headers', fn: (o: { statusCode: number; headers: unknown[] }) => void): void;
}) {
  client.on('headers', (o) => {
    if (!measuring) return;
    if (o.statusCode < 200 || o.statusCode > 299) statuses[o.statusCode] = (statuses[o.statusCode] ?? 0) + 1;
    const h = o.headers;
    for (let i = 0; i < h.length; i += 2) {
      if (String(h[i]).toLowerCase() === 'x-gatewayz-overhead-ms') {
        overhead.push(Number(String(h[i + 1])));
        break;
      }
    }
  });
}

const stats = async () => JSON.parse((await httpJson(`${a.mock}/mock/stats`)).body) as { chat: number };

if (warmup > 0) {
  await autocannon(opts(warmup));
  await new Promise((r) => setTimeout(r, 500));
}
const before = await stats();
const cpu0 = cpuTicks(gwPid);
const t0 = process.hrtime.bigint();
measuring = true;
const r = await autocannon(opts(duration));
measuring = false;
overhead.sort((x, y) => x - y);
const wall = Number(process.hrtime.bigint() - t0) / 1e9;
const gwCpuS = gwPid ? (cpuTicks(gwPid) - cpu0) / CLK_TCK : null;
await new Promise((res) => setTimeout(res, 300));
const after = await stats();
emitResult({
  target: target.name,
  mode,
  conns,
  rate,
  duration,
  rps: r.requests.average,
  ok: r['2xx'],
  non2xx: r.non2xx,
  errors: r.errors,
  timeouts: r.timeouts,
  p50: r.latency.p50,
  p90: r.latency.p90,
  p99: r.latency.p99,
  mean: r.latency.mean,
  upstreamCalls: after.chat - before.chat,
  statuses,
  overheadHeaderP50: overhead.length ? pct(overhead, 50) : null,
  overheadHeaderP99: overhead.length ? pct(overhead, 99) : null,
  gwCpuPct: gwCpuS === null ? null : (gwCpuS / wall) * 100,
  gwCpuUsPerReq: gwCpuS !== null && r['2xx'] ? (gwCpuS * 1e6) / r['2xx'] : null,
});
