/**
 * The dashboard talks only to the gateway's public API. The session key lives in memory only
 * (never localStorage): a reload signs out, by design.
 */
let key: string | null = null;

export interface Session {
  isAdmin: boolean;
  isUser: boolean;
  userId: string | null;
}
export let session: Session | null = null;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function api<T = any>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const res = await fetch(path, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: {
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!res.ok) throw new ApiError(res.status, data?.error?.message ?? `HTTP ${res.status}`);
  return data as T;
}

/** Sign in with an API key: a user key reads its balance; an admin key reaches the monitor. */
export async function signIn(apiKey: string): Promise<Session> {
  key = apiKey.trim();
  const [user, admin] = await Promise.allSettled([api('/user/balance'), api('/admin/monitor')]);
  if (user.status === 'rejected' && admin.status === 'rejected') {
    key = null;
    throw user.reason;
  }
  session = {
    isUser: user.status === 'fulfilled',
    isAdmin: admin.status === 'fulfilled',
    userId: user.status === 'fulfilled' ? (user.value.user_id ?? null) : null,
  };
  return session;
}

export function signOut(): void {
  key = null;
  session = null;
}

export function currentKey(): string | null {
  return key;
}

/** A list out of whatever envelope an endpoint uses. */
export function listOf(r: any): any[] {
  if (Array.isArray(r)) return r;
  for (const k of [
    'data',
    'items',
    'keys',
    'api_keys',
    'sessions',
    'users',
    'logs',
    'transactions',
    'records',
    'rows',
    'models',
    'coupons',
    'plans',
    'payments',
  ]) {
    if (Array.isArray(r?.[k])) return r[k];
  }
  return [];
}

export const usd = (n: unknown): string =>
  typeof n === 'number'
    ? `$${n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 6 })}`
    : '—';
