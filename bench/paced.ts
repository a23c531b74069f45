/**
 * Latency at an evenly paced rate, free of coordinated omission: request i is due at t0 + i/rate and
 * its latency runs from when it was due (not from when it went out) to the end of its body, so a
 * stall shows in every request it delays. Keep-alive connections, as many as the requests in flight.
 *   --target=<json> --rate=300 --duration=10 --warmup=2
 * (autocannon's fixed-rate row, which the shared harness uses, sends each second's requests in a burst
 * at the top of the second, 32 at a time, and its correction for coordinated omission assumes one
 * request per millisecond per connection: it measures a burst, and a slow answer counts many times.)
 */
import http from 'node:http';
import { CLK_TCK, chatBody, cpuTicks, emitResult, loadTarget, parseArgs, pct } from './lib.js';

const a = parseArgs();
const target = loadTarget(a.target!);
const rate = Number(a.rate ?? 300);
const duration = Number(a.duration ?? 10);
const warmup = Number(a.warmup ?? 2);
const gwPid = a['gw-pid'] ? Number(a['gw-pid']) : null;
const body = JSON.stringify(chatBody(false));
const url = new URL(`${target.base}/chat/completions`);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const headers = {
  'content-type': 'application/json',
  'content-length': Buffer.byteLength(body),
  ...target.headers,
};

function one(): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers },
      (res) => {
        res.on('data', () => {});
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

async function run(seconds: number): Promise<{ lat: number[]; errors: number; late: number }> {
  const lat: number[] = [];
  let errors = 0;
  let late = 0;
  const n = Math.round(seconds * rate);
  const interval = 1000 / rate;
  const t0 = performance.now() + 20;
  const pending: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const due = t0 + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait - 1));
    while (performance.now() < due) await new Promise((r) => setImmediate(r));
    if (performance.now() - due > 1) late++;
    pending.push(
      one().then(
        (status) => {
          if (status === 200) lat.push(performance.now() - due);
          else errors++;
        },
        () => {
          errors++;
        },
      ),
    );
  }
  await Promise.all(pending);
  return { lat, errors, late };
}

if (warmup > 0) await run(warmup);
const cpu0 = gwPid ? cpuTicks(gwPid) : 0;
const { lat, errors, late } = await run(duration);
const gwCpuS = gwPid ? (cpuTicks(gwPid) - cpu0) / CLK_TCK : null;
lat.sort((x, y) => x - y);
emitResult({
  target: target.name,
  rate,
  n: lat.length,
  errors,
  late,
  p50: pct(lat, 50),
  p90: pct(lat, 90),
  p99: pct(lat, 99),
  max: lat.at(-1) ?? null,
  gwCpuUsPerReq: gwCpuS !== null && lat.length ? (gwCpuS * 1e6) / lat.length : null,
});
agent.destroy();
