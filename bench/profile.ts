/** Summarises a V8 .cpuprofile (from `node --cpu-prof`): top functions by self time. */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface SelfTime {
  fn: string;
  where: string;
  ms: number;
  pct: number;
}

export function topSelfTime(
  dir: string,
  root: string,
  limit = 25,
  /** Ignore samples taken in the first `skipMs` of the profile (process start-up, before the load). */
  skipMs = 0,
): { totalMs: number; top: SelfTime[]; places: { place: string; ms: number; pct: number }[] } {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const byFn = new Map<string, SelfTime>();
  let total = 0;
  for (const f of files) {
    const p = JSON.parse(readFileSync(join(dir, f), 'utf8')) as CpuProfile;
    const nodeById = new Map(p.nodes.map((n) => [n.id, n]));
    let at = 0;
    for (let i = 0; i < p.samples.length; i++) {
      const n = nodeById.get(p.samples[i]!);
      const dt = (p.timeDeltas[i] ?? 0) / 1000;
      at += dt;
      if (!n || at < skipMs) continue;
      const name = n.callFrame.functionName || '(anonymous)';
      if (name === '(idle)' || name === '(program)') continue;
      total += dt;
      const url = n.callFrame.url.replace(/^file:\/\//, '');
      const where = url
        ? `${url.startsWith(root) ? relative(root, url) : url}:${n.callFrame.lineNumber + 1}`
        : '';
      const key = `${name} ${where}`;
      const e = byFn.get(key) ?? { fn: name, where, ms: 0, pct: 0 };
      e.ms += dt;
      byFn.set(key, e);
    }
  }
  const byPlace = new Map<string, number>();
  for (const e of byFn.values()) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(e.where);
    const place = m
      ? m[1]!
      : e.where.startsWith('dist/')
        ? e.where.split(':')[0]!
        : e.where.startsWith('node:')
          ? 'node:*'
          : e.fn.startsWith('(')
            ? e.fn
            : 'native';
    byPlace.set(place, (byPlace.get(place) ?? 0) + e.ms);
  }
  const places = [...byPlace]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15)
    .map(([place, ms]) => ({ place, ms, pct: total ? (ms / total) * 100 : 0 }));
  const top = [...byFn.values()].sort((a, b) => b.ms - a.ms).slice(0, limit);
  for (const e of top) e.pct = total ? (e.ms / total) * 100 : 0;
  return { totalMs: total, top, places };
}
