import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { FastCounter, FastGauge, FastHistogram } from '../../src/metrics/fast.js';

/** src/metrics/fast.ts must export exactly what prom-client's own types export for the same records. */
describe('fast metrics', () => {
  const BOUNDS = [0.001, 0.01, 0.1, 1, 10];

  function record(
    counter: (...labels: string[]) => { inc(v?: number): void },
    histogram: (...labels: string[]) => { observe(v: number): void },
    unlabeled: { observe(v: number): void },
    gauge: { inc(): void; dec(): void },
  ) {
    for (let i = 0; i < 40; i++) {
      counter('/v1/chat/completions', 'POST', i % 3 ? '200' : '429').inc();
      counter('/health', 'GET', '200').inc(i % 4);
      histogram('/v1/chat/completions', 'POST').observe(i / 97);
      histogram('/a "quoted"\\path\n', 'GET').observe(i * 0.4);
      unlabeled.observe(i === 7 ? 0.01 : i / 1000); // 0.01 exactly: on the bound, counted in its bucket
    }
    gauge.inc();
    gauge.inc();
    gauge.dec();
  }

  async function promClient(defaultLabels: boolean): Promise<string> {
    const r = new Registry();
    if (defaultLabels) r.setDefaultLabels({ instance_id: 'i-1' });
    const c = new Counter({
      name: 'c_total',
      help: 'c',
      labelNames: ['route', 'method', 'status'],
      registers: [r],
    });
    const h = new Histogram({
      name: 'h_seconds',
      help: 'h',
      labelNames: ['route', 'method'],
      buckets: BOUNDS,
      registers: [r],
    });
    const u = new Histogram({ name: 'u_seconds', help: 'u', buckets: BOUNDS, registers: [r] });
    const g = new Gauge({ name: 'g', help: 'g', registers: [r] });
    record(
      (...l) => c.labels(...l),
      (...l) => h.labels(...l),
      u,
      g,
    );
    return r.metrics();
  }

  async function fast(defaultLabels: boolean): Promise<string> {
    const r = new Registry();
    if (defaultLabels) r.setDefaultLabels({ instance_id: 'i-1' });
    const c = new FastCounter('c_total', 'c', ['route', 'method', 'status'], r);
    const h = new FastHistogram('h_seconds', 'h', ['route', 'method'], BOUNDS, r);
    const u = new FastHistogram('u_seconds', 'u', [], BOUNDS, r);
    const g = new FastGauge('g', 'g', r);
    record(
      (...l) => c.child(...l),
      (...l) => h.child(...l),
      u.child(),
      g,
    );
    return r.metrics();
  }

  it('exports the same text as prom-client, with and without default labels', async () => {
    for (const d of [false, true]) {
      const expected = await promClient(d);
      expect(expected).toContain('h_seconds_bucket{le="0.01",');
      expect(await fast(d)).toBe(expected);
    }
  });

  it('exports unlabeled series from the start, and refuses what prom-client refuses', async () => {
    const r = new Registry();
    new FastHistogram('u_seconds', 'u', [], BOUNDS, r);
    new FastCounter('n_total', 'n', [], r);
    const text = await r.metrics();
    expect(text).toContain('u_seconds_count 0');
    expect(text).toContain('n_total 0');
    const c = new FastCounter('l_total', 'l', ['a'], r);
    expect(() => c.child('x', 'y')).toThrow(/1 label values expected/);
    expect(() => c.child('x').inc(-1)).toThrow();
    expect(() => new FastHistogram('h2', 'h', ['a'], BOUNDS, r).child('x').observe(Number.NaN)).toThrow();
    expect(() => new FastGauge('l_total', 'dup', r)).toThrow(/already been registered/);
  });
});
