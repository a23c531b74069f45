/**
 * The dashboard talks only to the gateway's public API. The credential lives in memory only
 * (never localStorage, sessionStorage or cookies): an API key typed in, or a Privy session whose
 * access token the Privy SDK keeps in its in-memory storage. A reload signs out, by design.
 */
import type { PrivyClient } from './privy.js';

let key: string | null = null;
let privy: PrivyClient | null = null;

export interface Session {
  isAdmin: boolean;
  isUser: boolean;
  userId: string | null;
  method: 'key' | 'privy';
  /** The API key a Privy sign-up created, to be shown once. */
  newApiKey: string | null;
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

/** The bearer for the next request: the key, or a Privy access token (refreshed by the SDK before it expires). */
async function bearer(): Promise<string | null> {
  if (key) return key;
  return privy ? await privy.token() : null;
}

export async function api<T = any>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const send = (token: string | null) =>
    fetch(path, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
  const token = await bearer();
  let res = await send(token);
  // A Privy token may have expired between the SDK's check and the gateway's: once more with a fresh one.
  if (res.status === 401 && privy) {
    const fresh = await bearer();
    if (fresh && fresh !== token) res = await send(fresh);
  }
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

/** What the signed-in credential reaches: a user's pages (its balance), the operator pages (the monitor), or both. */
async function probe(method: Session['method'], newApiKey: string | null): Promise<Session> {
  const [user, admin] = await Promise.allSettled([api('/user/balance'), api('/admin/monitor')]);
  if (user.status === 'rejected' && admin.status === 'rejected') throw user.reason;
  session = {
    isUser: user.status === 'fulfilled',
    isAdmin: admin.status === 'fulfilled',
    userId: user.status === 'fulfilled' ? (user.value.user_id ?? null) : null,
    method,
    newApiKey,
  };
  return session;
}

/** Sign in with an API key: a user key reads its balance; an admin key reaches the monitor. */
export async function signIn(apiKey: string): Promise<Session> {
  key = apiKey.trim();
  privy = null;
  try {
    return await probe('key', null);
  } catch (err) {
    key = null;
    throw err;
  }
}

/**
 * After a Privy login: POST /auth/privy signs in (or creates the account, with a first API key
 * shown once); from then on the Privy access token is the bearer.
 */
export async function signInWithPrivy(client: PrivyClient, email: string): Promise<Session> {
  const token = await client.token();
  if (!token) throw new Error('Privy did not return an access token; try again');
  key = null;
  try {
    const r = await api('/auth/privy', { body: { token, email } });
    privy = client;
    return await probe('privy', typeof r?.api_key === 'string' ? r.api_key : null);
  } catch (err) {
    privy = null;
    await client.signOut().catch(() => {});
    throw err;
  }
}

/** Forget the credential; a Privy session is also ended at Privy. */
export function signOut(): void {
  const p = privy;
  key = null;
  privy = null;
  session = null;
  if (p) void p.signOut().catch(() => {});
}

/** The API key the user signed in with (null for a Privy session: inference needs a key). */
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
