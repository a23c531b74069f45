import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ConfigError } from '../config/error.js';

/** Settings for running as one of many instances: shutdown, scheduled jobs, metrics and tracing. */
export interface FleetConfig {
  /** Names this process in leases, logs and traces. */
  instanceId: string;
  /** Prefix of every Redis key and channel this gateway uses. */
  redisPrefix: string;
  /** How long SIGTERM waits for in-flight requests and streams before cutting them. */
  shutdownGraceMs: number;
  /** How often the hold sweeper runs (one instance of the fleet at a time). */
  holdSweepIntervalMs: number;
  /** Bearer token `GET /metrics` requires; null leaves it open. */
  metricsToken: string | null;
  /** OTLP/HTTP base URL (`…:4318`); null disables tracing. */
  otlpEndpoint: string | null;
  otlpHeaders: Record<string, string>;
  serviceName: string;
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, def: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min)
    throw new ConfigError(`${name} must be an integer >= ${min}, got "${raw}"`);
  return n;
}

/** `k1=v1,k2=v2` as OTEL_EXPORTER_OTLP_HEADERS defines it. */
function headerList(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (raw ?? '').split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    out[decodeURIComponent(part.slice(0, i).trim())] = decodeURIComponent(part.slice(i + 1).trim());
  }
  return out;
}

export function loadFleetConfig(env: Env): FleetConfig {
  const otlp = env.OTEL_EXPORTER_OTLP_ENDPOINT || null;
  if (otlp) {
    try {
      const u = new URL(otlp);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('protocol');
    } catch {
      throw new ConfigError(`OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL, got "${otlp}"`);
    }
  }
  const token = env.METRICS_TOKEN || null;
  if (token !== null && token.length < 8)
    throw new ConfigError('METRICS_TOKEN must be at least 8 characters');
  return {
    instanceId: env.INSTANCE_ID || `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    redisPrefix: env.REDIS_PREFIX || 'gatewayz:',
    shutdownGraceMs: int(env, 'SHUTDOWN_GRACE_MS', 25_000, 0),
    holdSweepIntervalMs: int(env, 'HOLD_SWEEP_INTERVAL_MS', 30_000, 100),
    metricsToken: token,
    otlpEndpoint: otlp ? otlp.replace(/\/+$/, '') : null,
    otlpHeaders: headerList(env.OTEL_EXPORTER_OTLP_HEADERS),
    serviceName: env.OTEL_SERVICE_NAME || 'gatewayz',
  };
}
