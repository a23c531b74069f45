/**
 * Concurrent long-lived SSE streams through one target: opens --n streams at --open-rate per second,
 * holds them, samples the target's RSS, then checks every stream completed intact (expected events).
 * With --gw-pid it also reports the target's CPU time from the first stream opened to the last
 * stream's first event, per stream: at --open-rate, more than 1000/rate ms per stream is more than a
 * core, and the first events queue. With --metrics=URL (the gateway's /metrics) it reports V8's GC
 * pauses over the same span, from prom-client's `nodejs_gc_duration_seconds` (scavenges and full GCs).
 * With --gw-pid it also reports, while every stream is open (from 1 s after the last first event to the
 * first stream's end), the target's CPU time per event relayed, and the events' rate.
 *   --target=<json> --n=2000 --open-rate=500 --expect=<events per stream> --deadline-s=60 [--gw-pid=N] [--metrics=URL]
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
const metricsUrl = a.metrics ?? null;
if (metricsUrl) loadTarget(JSON.stringify({ name: 'metrics', base: metricsUrl, headers: {} })); // loopback only
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
/** Events received by all streams so far; and when the first stream ended (ms since T0). */
let eventsAll = 0;
let firstEndAt: number | null = null;
/** While every stream is open (from 1 s after the last first event to the first end): the target's CPU ticks and the events relayed, first and last sample. */
type Sample = { at: number; ticks: number; events: number };
let heldFirst: Sample | null = null;
let heldLast: Sample | null = null;

interface GcTotals {
  /** Scavenges (young generation): count and seconds. */
  minor: { n: number; s: number };
  /** Mark-compact and incremental marking steps (old generation). */
  major: { n: number; s: number };
}
/** V8's GC totals from the gateway's /metrics (prom-client's default `nodejs_gc_duration_seconds`). */
async function gcTotals(): Promise<GcTotals | null> {
  if (!metricsUrl) return null;
  try {
    const text = await (await fetch(metricsUrl)).text();
    const t: GcTotals = { minor: { n: 0, s: 0 }, major: { n: 0, s: 0 } };
    for (const line of text.split('\n')) {
      const m = /^nodejs_gc_duration_seconds_(sum|count)\{[^}]*kind="(\w+)"[^}]*\} ([\d.e+-]+)$/.exec(line);
      if (!m) continue;
      const bucket = m[2] === 'minor' ? t.minor : m[2] === 'major' || m[2] === 'incremental' ? t.major : null;
      if (!bucket) continue;
      if (m[1] === 'sum') bucket.s += Number(m[3]);
      else bucket.n += Number(m[3]);
    }
    return t;
  } catch {
    return null;
  }
}
const gcBefore = await gcTotals();
/** GC from the start to the last stream's first event (read when it arrives). */
let gcOpening: Promise<GcTotals | null> = Promise.resolve(null);

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
        if (firsts.length === N && gcBefore) gcOpening = gcTotals();
      }
      buf += c;
      for (let k = buf.indexOf('\n\n'); k >= 0; k = buf.indexOf('\n\n')) {
        const ev = buf.slice(0, k);
        buf = buf.slice(k + 2);
        if (ev.startsWith('data:')) {
          events++;
          eventsAll++;
          if (ev.includes('[DONE]')) done = true;
        }
      }
    });
    res.on('end', () => {
      alive--;
      firstEndAt ??= performance.now() - T0;
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
  const now = performance.now() - T0;
  if (gwPid && opening && firstEndAt === null && now >= opening.ms + 1000) {
    heldLast = { at: now, ticks: cpuTicks(gwPid), events: eventsAll };
    heldFirst ??= heldLast;
  }
}, 250);

/** CPU per event relayed while every stream was open, and the events' rate then. */
function heldCost(): { cpuUsPerEvent: number; eventsPerS: number } | null {
  const a = heldFirst;
  const b = heldLast;
  if (!a || !b) return null;
  const ev = b.events - a.events;
  if (ev <= 0 || b.at - a.at < 1000) return null;
  return {
    cpuUsPerEvent: ((b.ticks - a.ticks) * 1e6) / CLK_TCK / ev,
    eventsPerS: (ev * 1000) / (b.at - a.at),
  };
}

let finished = false;
const finish = async (why: string) => {
  if (finished) return;
  finished = true;
  clearInterval(opener);
  clearInterval(sampler);
  clearInterval(watch);
  clearTimeout(hard);
  for (const r of reqs) r.destroy();
  firsts.sort((x, y) => x - y);
  const gcAfter = await gcOpening;
  const gcDelta = (k: 'minor' | 'major') =>
    gcBefore && gcAfter
      ? { n: gcAfter[k].n - gcBefore[k].n, ms: (gcAfter[k].s - gcBefore[k].s) * 1000 }
      : null;
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
    openingScavenges: gcDelta('minor'),
    openingFullGc: gcDelta('major'),
    held: heldCost(),
    seconds: (performance.now() - T0) / 1000,
  });
  process.exit(0);
};
const hard = setTimeout(() => void finish('deadline'), DEADLINE);
const watch = setInterval(() => {
  if (ended >= N) void finish('all ended');
}, 50);
