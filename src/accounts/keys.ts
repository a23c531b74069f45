import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const ENVIRONMENTS = ['live', 'test', 'staging', 'development'] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

const PREFIX: Record<Environment, string> = {
  live: 'gw_live_',
  test: 'gw_test_',
  staging: 'gw_staging_',
  development: 'gw_dev_',
};

export const normalizeEnvironment = (tag: string | undefined | null): Environment | null => {
  if (!tag) return 'live';
  const t = tag.toLowerCase();
  if (t === 'dev') return 'development';
  return (ENVIRONMENTS as readonly string[]).includes(t) ? (t as Environment) : null;
};

export interface NewKey {
  secret: string;
  hash: string;
  prefix: string;
}

/** `gw_<env>_` + 32 random bytes, URL-safe. Only the HMAC and a short display prefix are stored. */
export function generateKey(env: Environment, gatewaySecret: string): NewKey {
  const secret = PREFIX[env] + randomBytes(32).toString('base64url');
  return { secret, hash: hashKey(secret, gatewaySecret), prefix: displayPrefix(secret) };
}

export const hashKey = (secret: string, gatewaySecret: string): string =>
  createHmac('sha256', gatewaySecret).update(secret).digest('base64url');

export const displayPrefix = (secret: string): string => {
  const at = secret.indexOf('_', 3) + 1;
  return `${secret.slice(0, at + 6)}…`;
};

/** Constant-time equality of two secrets (compares their HMACs so lengths never leak). */
export function secretsEqual(a: string, b: string, gatewaySecret: string): boolean {
  const ha = createHmac('sha256', gatewaySecret).update(a).digest();
  const hb = createHmac('sha256', gatewaySecret).update(b).digest();
  return timingSafeEqual(ha, hb);
}
