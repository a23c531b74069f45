import { ConfigError } from '../config/error.js';
import { usdToMicros } from '../lib/money.js';

/** Settings of login, keys and brute-force protection (read from the environment by loadConfig). */
export interface AccountsConfig {
  privyAppId: string | null;
  /** PEM (SPKI) ES256 public key of the Privy app. */
  privyVerificationKey: string | null;
  privyJwksUrl: string | null;
  /** Privy client id the dashboard's Privy SDK sends (optional; apps with several clients). */
  privyClientId: string | null;
  /** Privy's auth API the dashboard's SDK talks to (origin added to the dashboard's CSP). */
  privyApiUrl: string;
  signupCreditsMicros: number;
  maxKeysPerUser: number;
  /** Failed authentications per IP per minute before the IP gets 429s. */
  authFailuresPerMinute: number;
}

type Env = Record<string, string | undefined>;

function intOf(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  return n;
}

function httpUrl(name: string, raw: string): void {
  try {
    const u = new URL(raw);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('protocol');
  } catch {
    throw new ConfigError(`${name} must be an http(s) URL, got "${raw}"`);
  }
}

export function loadAccountsConfig(env: Env): AccountsConfig {
  const credits = env.SIGNUP_CREDITS_USD;
  let signup = 0;
  if (credits !== undefined && credits !== '') {
    const n = Number(credits);
    if (!Number.isFinite(n) || n < 0 || n > 1_000_000)
      throw new ConfigError(`SIGNUP_CREDITS_USD must be a number between 0 and 1000000, got "${credits}"`);
    signup = usdToMicros(n);
  }
  const jwks = env.PRIVY_JWKS_URL || null;
  if (jwks) httpUrl('PRIVY_JWKS_URL', jwks);
  const apiUrl = env.PRIVY_API_URL || 'https://auth.privy.io';
  httpUrl('PRIVY_API_URL', apiUrl);
  // PEM keys in env files often arrive with literal "\n".
  const pem = env.PRIVY_VERIFICATION_KEY ? env.PRIVY_VERIFICATION_KEY.replace(/\\n/g, '\n').trim() : null;
  if (pem && !pem.includes('BEGIN PUBLIC KEY'))
    throw new ConfigError('PRIVY_VERIFICATION_KEY must be a PEM public key (-----BEGIN PUBLIC KEY-----)');
  return {
    privyAppId: env.PRIVY_APP_ID || null,
    privyVerificationKey: pem,
    privyJwksUrl: jwks,
    privyClientId: env.PRIVY_CLIENT_ID || null,
    privyApiUrl: apiUrl.replace(/\/+$/, ''),
    signupCreditsMicros: signup,
    maxKeysPerUser: intOf(env, 'MAX_KEYS_PER_USER', 25, 1, 10_000),
    authFailuresPerMinute: intOf(env, 'AUTH_FAILURES_PER_MINUTE', 20, 1, 1_000_000),
  };
}

/** What a browser needs to sign in with Privy, or null when Privy login is not configured. */
export function privyClientConfig(
  cfg: AccountsConfig,
): { app_id: string; client_id?: string; api_url: string } | null {
  if (!cfg.privyAppId || !(cfg.privyVerificationKey || cfg.privyJwksUrl)) return null;
  return {
    app_id: cfg.privyAppId,
    ...(cfg.privyClientId ? { client_id: cfg.privyClientId } : {}),
    api_url: cfg.privyApiUrl,
  };
}
