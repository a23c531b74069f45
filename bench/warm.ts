/**
 * Warm-up to steady state, before a target's first measured cell (run as its own process, pinned next
 * to the mock): 1-second autocannon slices at 32 connections, JSON and SSE in turn, until each mode's
 * last two slices are within `--tolerance` of each other (the JIT has settled), or `--max-s` seconds
 * have passed. Every target gets the same treatment; the slices are reported, so the run also shows
 * how long each one takes to reach its steady speed.
 *   --target=<json> --conns=32 --max-s=12 --tolerance=0.1 [--gw-pid=N]
 * Prints one result line (see lib.ts RESULT_MARK).
 */
import { createRequire } from 'node:module';
import { CLK_TCK, chatBody, cpuTicks, emitResult, loadTarget, parseArgs } from './lib.js';

const require = createRequire(import.meta.url);
// autocannon ships no types; its result shape is used as documented.
const autocannon = require('autocannon') as (opts: Record<string, unknown>) => Promise<any>;

const a = parseArgs();
const target = loadTarget(a.target!);
const conns = Number(a.conns ?? 32);
const maxS = Number(a['max-s'] ?? 12);
const tolerance = Number(a.tolerance ?? 0.1);
const gwPid = a['gw-pid'] ? Number(a['gw-pid']) : null;
const modes = ['json', 'stream'] as const;
const bodies = { json: JSON.stringify(chatBody(false)), stream: JSON.stringify(chatBody(true)) };

interface WarmSlice {
  mode: 'json' | 'stream';
  rps: number;
  cpuUsPerReq: number | null;
}

const slices: WarmSlice[] = [];
const settled = (mode: 'json' | 'stream'): boolean => {
  const s = slices.filter((x) => x.mode === mode);
  if (s.length < 2) return false;
  const [prev, last] = [s[s.length - 2]!.rps, s[s.length - 1]!.rps];
  return last > 0 && Math.abs(last - prev) <= tolerance * Math.max(last, prev);
};

const started = Date.now();
let steadyAfterS: number | null = null;
for (let i = 0; (Date.now() - started) / 1000 < maxS; i++) {
  const mode = modes[i % 2]!;
  const cpu0 = cpuTicks(gwPid);
  const r = await autocannon({
    url: `${target.base}/chat/completions`,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...target.headers },
    body: bodies[mode],
    connections: conns,
    duration: 1,
    timeout: 10,
  });
  const cpuS = gwPid ? (cpuTicks(gwPid) - cpu0) / CLK_TCK : null;
  slices.push({
    mode,
    rps: r.requests.average,
    cpuUsPerReq: cpuS !== null && r['2xx'] ? (cpuS * 1e6) / r['2xx'] : null,
  });
  if (settled('json') && settled('stream')) {
    steadyAfterS = (Date.now() - started) / 1000;
    break;
  }
}
emitResult({ target: target.name, slices, steadyAfterS, seconds: (Date.now() - started) / 1000 });
