/**
 * Concurrent long-lived SSE streams through one target: opens --n streams at --open-rate per second,
 * holds them, samples the target's RSS, then checks every stream completed intact (expected events).
 * With --gw-pid it also reports the target's CPU time from the first stream opened to the last
 * stream's first event, per stream: at --open-rate, more than 1000/rate ms per stream is more than a
 * core, and the first events queue.
 *   --target=<json> --n=2000 --open-rate=500 --expect=<events per stream> --deadline-s=60 [--gw-pid=N]
 * The mock must already stream with a chunk interval (run.ts sets it) so the streams stay open.
 */
import http from 'node:http';
import { CLK_TCK, chatBody, cpuTicks, emitResult, loadTarget, parseArgs, pct, rssKb } from './lib.js';

const a = parseArgs();
const t = loadTarget(a.target!);
const N = Number(a.n ?? 2000);
const RATE = Number(a['open-rate'] ?? 500);
const EXPECT = Number(a.expect ?? 0);
const DEADLINE = Number(a['deadline-s'] ?? 60) * 1000;
const gwPid = a['gw-pid'] ? Number(a['gw-pid']) : null;
const body = JSON.stringify(chatBody(true));
const headers = { 'content-type': 'application/json', ...t.headers };
// One socket per stream, as separate clients would have.
const agent = new http.Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });

const T0 = performance.now();
const firsts: number[] = [];
const errors: Record<string, number> = {};
const reqs = new Set<http.ClientRequest>();
let opened = 0;
let alive = 0;
let maxAlive = 0;
let ended = 0;
let completed = 0;
const rssBefore = rssKb(gwPid);
let rssPeak = rssBefore;
const cpuBefore = cpuTicks(gwPid);
/** CPU ticks and wall ms from the start to the last stream's first event. */
let opening: { ticks: number; ms: number } | null = null;

function open(): void {
  const start = performance.now();
  let first = false;
  let events = 0;
  let done = false;
  let fail: string | null = null;
  const req = http.request(`${t.base}/chat/completions`, { method: 'POST', headers, agent }, (res) => {
    if (res.statusCode !== 200) {
      fail = `status_${res.statusCode}`;
      res.resume();
      return;
    }
    alive++;
    if (alive > maxAlive) maxAlive = alive;
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      if (!first) {
        first = true;
        firsts.push(performance.now() - start);
        if (firsts.length === N && gwPid)
          opening = { ticks: cpuTicks(gwPid) - cpuBefore, ms: performance.now() - T0 };
      }
      buf += c;
      for (let k = buf.indexOf('\n\n'); k >= 0; k = buf.indexOf('\n\n')) {
        const ev = buf.slice(0, k);
        buf = buf.slice(k + 2);
        if (ev.startsWith('data:')) {
          events++;
          if (ev.includes('[DONE]')) done = true;
        }
      }
    });
    res.on('end', () => {
      alive--;
    });
    res.on('error', () => {});
  });
  reqs.add(req);
  req.on('error', (e: NodeJS.ErrnoException) => {
    fail ??= e.code ?? e.message;
  });
  req.on('close', () => {
    reqs.delete(req);
    ended++;
    if (!fail && done && (EXPECT === 0 || events === EXPECT)) completed++;
    else {
      const why = fail ?? (done ? `events_${events}` : 'cut_short');
      errors[why] = (errors[why] ?? 0) + 1;
    }
  });
  req.setTimeout(DEADLINE, () => req.destroy(new Error('timeout')));
  req.end(body);
}

const perTick = Math.max(1, Math.round(RATE / 100));
const opener = setInterval(() => {
  for (let j = 0; j < perTick && opened < N; j++, opened++) open();
  if (opened >= N) clearInterval(opener);
}, 10);
const sampler = setInterval(() => {
  const r = rssKb(gwPid);
  if (r > rssPeak) rssPeak = r;
}, 250);

let finished = false;
const finish = (why: string) => {
  if (finished) return;
  finished = true;
  clearInterval(opener);
  clearInterval(sampler);
  clearInterval(watch);
  clearTimeout(hard);
  for (const r of reqs) r.destroy();
  firsts.sort((x, y) => x - y);
  emitResult({
    target: t.name,
    n: N,
    why,
    opened,
    firstEventOk: firsts.length,
    maxConcurrent: maxAlive,
    completedIntact: completed,
    errors,
    firstEventP50: pct(firsts, 50),
    firstEventP99: pct(firsts, 99),
    rssBeforeMb: rssBefore / 1024,
    rssPeakMb: rssPeak / 1024,
    kibPerStream: gwPid ? (rssPeak - rssBefore) / N : null,
    openingCpuMsPerStream: opening ? (opening.ticks * 1000) / CLK_TCK / N : null,
    openingCoreShare: opening ? (opening.ticks * 1000) / CLK_TCK / opening.ms : null,
    seconds: (performance.now() - T0) / 1000,
  });
  process.exit(0);
};
const hard = setTimeout(() => finish('deadline'), DEADLINE);
const watch = setInterval(() => {
  if (ended >= N) finish('all ended');
}, 50);
