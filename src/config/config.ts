import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { type AccountsConfig, loadAccountsConfig } from '../accounts/config.js';
import { type CommerceConfig, loadCommerceConfig } from '../commerce/config.js';
import { type FleetConfig, loadFleetConfig } from '../fleet/config.js';
import { type LimitsConfig, loadLimitsConfig } from '../limits/config.js';
import { loadRoutingSettings, type RoutingSettings } from '../routing/config.js';
import { ConfigError } from './error.js';
import { type FileConfig, parseFileConfig } from './file.js';

export type DatabaseTarget =
  | { kind: 'sqlite'; path: string }
  | { kind: 'postgres'; url: string; poolSize: number };

export interface ProviderSettings {
  apiKey: string;
  baseUrl?: string;
  /** Provider-specific extras (e.g. PORTKEY_VIRTUAL_KEY). */
  extra: Record<string, string>;
}

export interface Config {
  port: number;
  host: string;
  logLevel: string;
  dataDir: string;
  database: DatabaseTarget;
  redisUrl: string | null;
  adminApiKey: string | null;
  gatewaySecret: string;
  providers: Record<string, ProviderSettings>;
  providerOrder: string[];
  timeouts: { connectMs: number; firstByteMs: number; idleMs: number; totalMs: number };
  trustedProxies: string[];
  bodyLimitBytes: number;
  catalogSyncIntervalMs: number;
  holdTtlMs: number;
  /** Requests of one user in flight on a process from which on their holds come out of one lease (0: never). */
  holdLeaseMinInFlight: number;
  keyCacheTtlMs: number;
  appName: string;
  appUrl: string;
  file: FileConfig;
  /** Login (Privy), key limits, brute-force protection (src/accounts/config.ts). */
  accounts: AccountsConfig;
  /** Retries, breaker, fallbacks, balancing, per-provider timeouts, response cache (src/routing/config.ts). */
  routing: RoutingSettings;
  /** Scale-out, shutdown, metrics and tracing (src/fleet/config.ts). */
  fleet: FleetConfig;
  /** Rate limits and plan quotas (src/limits/config.ts). */
  limits: LimitsConfig;
  /** Plans, trial, Stripe, coupons, referrals, scheduled jobs, e-mail (src/commerce/config.ts). */
  commerce: CommerceConfig;
}

export { ConfigError };

/** Providers the gateway knows; each is on when `<NAME>_API_KEY` is set. */
export const PROVIDER_ENV: Record<string, { extras?: string[] }> = {
  openrouter: {},
  portkey: { extras: ['PORTKEY_VIRTUAL_KEY', 'PORTKEY_PROVIDER'] },
  featherless: {},
  chutes: {},
  openai: {},
  anthropic: {},
  deepinfra: {},
  together: {},
};

const DEFAULT_ORDER = [
  'openrouter',
  'openai',
  'anthropic',
  'portkey',
  'featherless',
  'chutes',
  'deepinfra',
  'together',
];

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, def: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return n;
}

function url(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  try {
    const u = new URL(raw);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('protocol');
  } catch {
    throw new ConfigError(`${name} must be an http(s) URL, got "${raw}"`);
  }
  return raw.replace(/\/+$/, '');
}

export function parseDatabaseUrl(raw: string | undefined, dataDir: string, poolSize: number): DatabaseTarget {
  if (raw === undefined || raw === '') return { kind: 'sqlite', path: join(dataDir, 'gatewayz.db') };
  if (raw.startsWith('postgres://') || raw.startsWith('postgresql://'))
    return { kind: 'postgres', url: raw, poolSize };
  for (const prefix of ['sqlite://', 'sqlite:', 'file://', 'file:']) {
    if (raw.startsWith(prefix)) {
      const p = raw.slice(prefix.length);
      if (!p) break;
      return { kind: 'sqlite', path: p === ':memory:' ? p : isAbsolute(p) ? p : resolve(p) };
    }
  }
  throw new ConfigError(
    `DATABASE_URL must be postgres://…, sqlite:PATH or file:PATH, got "${raw.replace(/:[^:@/]*@/, ':***@')}"`,
  );
}

/** GATEWAY_SECRET, or one generated once and kept in the data directory (never one per process). */
function loadSecret(env: Env, dataDir: string): string {
  const given = env.GATEWAY_SECRET;
  if (given !== undefined && given !== '') {
    if (given.length < 16) throw new ConfigError('GATEWAY_SECRET must be at least 16 characters');
    return given;
  }
  const file = join(dataDir, 'gateway-secret');
  if (existsSync(file)) {
    const s = readFileSync(file, 'utf8').trim();
    if (s.length >= 16) return s;
    throw new ConfigError(`${file} is corrupt; remove it or set GATEWAY_SECRET`);
  }
  mkdirSync(dataDir, { recursive: true });
  const s = randomBytes(32).toString('hex');
  writeFileSync(file, `${s}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return s;
}

export function loadConfig(env: Env = process.env): Config {
  const dataDir = resolve(env.DATA_DIR || './data');
  const host = env.HOST || '0.0.0.0';
  const logLevel = env.LOG_LEVEL || 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError(
      `LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "${logLevel}"`,
    );
  }
  const file = parseFileConfig(env.GATEWAYZ_CONFIG);
  const providers: Record<string, ProviderSettings> = {};
  for (const [name, spec] of Object.entries(PROVIDER_ENV)) {
    const upper = name.toUpperCase();
    const apiKey = env[`${upper}_API_KEY`];
    const baseUrl = url(env, `${upper}_BASE_URL`);
    if (!apiKey) continue;
    const extra: Record<string, string> = {};
    for (const x of spec.extras ?? []) if (env[x]) extra[x] = env[x] as string;
    providers[name] = { apiKey, baseUrl, extra };
  }
  const order = (env.PROVIDER_ORDER || file.providerOrder?.join(',') || DEFAULT_ORDER.join(','))
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  for (const p of order) {
    if (!PROVIDER_ENV[p]) throw new ConfigError(`PROVIDER_ORDER names an unknown provider "${p}"`);
  }
  for (const p of DEFAULT_ORDER) if (!order.includes(p)) order.push(p);

  const totalMs = int(env, 'UPSTREAM_TIMEOUT_MS', 600_000, 1);
  const timeouts = {
    connectMs: int(env, 'UPSTREAM_CONNECT_TIMEOUT_MS', 10_000, 1),
    firstByteMs: int(env, 'UPSTREAM_FIRST_BYTE_TIMEOUT_MS', 120_000, 1),
    idleMs: int(env, 'UPSTREAM_IDLE_TIMEOUT_MS', 120_000, 1),
    totalMs,
  };
  return {
    port: int(env, 'PORT', 8000, 0, 65535),
    host,
    logLevel,
    dataDir,
    database: parseDatabaseUrl(env.DATABASE_URL, dataDir, int(env, 'DATABASE_POOL_SIZE', 10, 1, 1000)),
    redisUrl: env.REDIS_URL || null,
    adminApiKey: env.ADMIN_API_KEY || null,
    gatewaySecret: loadSecret(env, dataDir),
    providers,
    providerOrder: order,
    timeouts,
    trustedProxies: (env.TRUSTED_PROXIES || '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    bodyLimitBytes: int(env, 'BODY_LIMIT_BYTES', 10 * 1024 * 1024, 1024),
    catalogSyncIntervalMs: int(env, 'CATALOG_SYNC_INTERVAL_MS', 3_600_000, 0),
    holdTtlMs: int(env, 'HOLD_TTL_MS', totalMs + 60_000, 1000),
    holdLeaseMinInFlight: int(env, 'HOLD_LEASE_MIN_IN_FLIGHT', 4, 0),
    keyCacheTtlMs: int(env, 'KEY_CACHE_TTL_MS', 1000, 0),
    appName: env.APP_NAME || 'Gatewayz',
    appUrl: env.APP_URL || 'https://github.com/gatewayz/gatewayz',
    file,
    accounts: loadAccountsConfig(env),
    routing: loadRoutingSettings(env, file, timeouts),
    fleet: loadFleetConfig(env),
    limits: loadLimitsConfig(env),
    commerce: loadCommerceConfig(env, file as unknown as Record<string, unknown>),
  };
}
