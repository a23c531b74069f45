import type { Environment } from './keys.js';

/**
 * Who is calling: resolved once per request from a key, the bootstrap admin key or a sign-in
 * session (a Privy access token: the user's role, no key), then cached.
 */
export interface Principal {
  kind: 'key' | 'admin' | 'session';
  userId: string | null;
  keyId: string | null;
  role: string;
  environment: Environment | null;
  /** Key settings the guard checks (parsed once, when the principal is cached). */
  key: KeySettings | null;
}

export interface KeySettings {
  isActive: boolean;
  expiresAt: number | null;
  maxRequests: number | null;
  scopes: Record<string, string[]> | null;
  ipAllowlist: string[] | null;
  domainReferrers: string[] | null;
  allowedModels: string[] | null;
  maxSpendMicros: number | null;
  userStatus: string;
  /** Compiled once per cached principal. */
  ipAllowed?: ((ip: string) => boolean) | null;
  /** Normalized hosts of domainReferrers. */
  domains?: string[] | null;
}
