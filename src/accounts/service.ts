import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { BillingStore } from '../billing/store.js';
import type { Database } from '../db/schema.js';
import { GatewayError } from '../lib/errors.js';
import { newId } from '../lib/ids.js';
import { type Environment, generateKey, hashKey } from './keys.js';
import type { KeySettings, Principal } from './principal.js';
import { ipMatcher, normalizeDomain } from './restrictions.js';
import { looksLikeJwt, type PrivySessions } from './sessions.js';
import type { AccountsStore, KeyRow, UserRow } from './store.js';

/** What changed, for listeners that spread invalidations to other instances (fleet pub/sub). */
export type KeyChange = { keyId: string } | { userId: string };

interface Cached {
  principal: Principal | null;
  at: number;
}

const parseJson = <T>(s: string | null): T | null => {
  if (!s) return null;
  try {
    return JSON.parse(s) as T;
  } catch {
    return null;
  }
};

export interface CreatedUser {
  user: UserRow;
  apiKey: string;
  keyId: string;
  balanceMicros: number;
}

/**
 * Users and keys: resolves a presented secret to a principal (cached in memory, so steady state
 * reads no database), creates users with their primary key and opening credit.
 */
export class AccountsService {
  private readonly cache = new Map<string, Cached>();
  private readonly hashByKeyId = new Map<string, Set<string>>();
  private static readonly MAX_CACHE = 50_000;
  private readonly listeners: Array<(c: KeyChange) => void> = [];
  /** Spend per key as last read plus what this instance charged since (for per-key spend caps). */
  private readonly spent = new Map<string, number>();
  /** last_used_at per key, written in batches (not one write per request). */
  private readonly lastUsed = new Map<string, number>();
  private usageTimer: NodeJS.Timeout | null = null;
  /** Set when Privy is configured: Privy access tokens are accepted as sign-in sessions. */
  private sessions: PrivySessions | null = null;

  constructor(
    private readonly db: Kysely<Database>,
    readonly store: AccountsStore,
    private readonly billing: BillingStore,
    private readonly secret: string,
    private readonly adminKey: string | null,
    private readonly cacheTtlMs: number,
  ) {}

  /** HMAC of the admin key, computed once (compared against each presented secret's HMAC). */
  private get adminDigest(): Buffer | null {
    if (this.adminDigestCache === undefined)
      this.adminDigestCache = this.adminKey
        ? createHmac('sha256', this.secret).update(this.adminKey).digest()
        : null;
    return this.adminDigestCache;
  }
  private adminDigestCache: Buffer | null | undefined = undefined;

  hash(secret: string): string {
    return hashKey(secret, this.secret);
  }

  /** A new secret for `env` with its HMAC and display prefix (the secret itself is never stored). */
  keygen(env: Environment) {
    return generateKey(env, this.secret);
  }

  /** Accept Privy access tokens as sign-in sessions (only when Privy is configured). */
  acceptSessions(sessions: PrivySessions): void {
    this.sessions = sessions;
  }

  /**
   * The principal for a presented secret, or null. Never says which part was wrong. A Privy
   * access token (when Privy is configured) is a session; a valid token whose user has no
   * account or is suspended throws with the reason.
   */
  async authenticate(presented: string, connection?: object): Promise<Principal | null> {
    // One HMAC per secret: it is both the constant-time admin comparison and the key's lookup hash.
    const digest = this.digestOf(presented, connection);
    if (this.adminDigest && timingSafeEqual(digest, this.adminDigest)) {
      return { kind: 'admin', userId: null, keyId: null, role: 'admin', environment: null, key: null };
    }
    if (!presented.startsWith('gw_'))
      return this.sessions && looksLikeJwt(presented) ? this.session(presented, digest) : null;
    if (presented.length > 100) return null;
    const hash = digest.toString('base64url');
    const now = Date.now();
    const hit = this.cached(hash, now);
    if (hit) return hit.principal;
    const row = await this.store.findKeyWithUser(hash, now);
    let principal: Principal | null = null;
    if (row && row.user_status !== 'deleted') {
      principal = toPrincipal(row, row.user_role, row.user_status);
      // The secret replaced by a rotation works until its grace period ends.
      if (row.key_hash !== hash && principal.key) {
        const until = row.previous_expires_at ?? now;
        principal.key.expiresAt =
          principal.key.expiresAt === null ? until : Math.min(until, principal.key.expiresAt);
      }
      this.spent.set(row.id, Math.max(this.spent.get(row.id) ?? 0, row.spent_micros));
    }
    this.remember(hash, principal, now);
    if (row) {
      const set = this.hashByKeyId.get(row.id) ?? new Set<string>();
      set.add(hash);
      this.hashByKeyId.set(row.id, set);
    }
    return principal;
  }

  /**
   * The HMAC of a presented secret. A keep-alive connection presents the same secret request after
   * request, so each connection keeps the last one it presented with its HMAC: computing an HMAC
   * when the CPU's caches are cold (a request every few milliseconds) takes ~30 µs, finding it
   * here ~1. The secret is compared in constant time (a proxy may carry several users' requests
   * on one connection) and is kept only as long as the connection that sent it.
   */
  private digestOf(presented: string, connection: object | undefined): Buffer {
    if (!connection) return createHmac('sha256', this.secret).update(presented).digest();
    const secret = Buffer.from(presented, 'utf8');
    const last = this.lastOnConnection.get(connection);
    if (last && last.secret.length === secret.length && timingSafeEqual(last.secret, secret))
      return last.digest;
    const digest = createHmac('sha256', this.secret).update(secret).digest();
    this.lastOnConnection.set(connection, { secret, digest });
    return digest;
  }
  private readonly lastOnConnection = new WeakMap<object, { secret: Buffer; digest: Buffer }>();

  /** A session by the token's HMAC from the same cache as keys; an entry lives until the token expires at most. */
  private async session(token: string, digest: Buffer): Promise<Principal | null> {
    const hash = digest.toString('base64url');
    const now = Date.now();
    const hit = this.cached(hash, now);
    if (hit) return hit.principal;
    // Forged or expired tokens are not cached: each one is verified (and throttled) again.
    const r = await this.sessions!.resolve(token);
    if (!r) return null;
    // Dated back so that the entry ends at the token's expiry when that comes before the TTL.
    this.remember(hash, r.principal, Math.min(now, r.expiresAt - this.cacheTtlMs));
    return r.principal;
  }

  /** The cached principal of a secret's hash while it is fresh (a null principal: a known bad key). */
  private cached(hash: string, now: number): { principal: Principal | null } | undefined {
    const hit = this.cache.get(hash);
    return hit && now - hit.at < this.cacheTtlMs ? hit : undefined;
  }

  /** Cache a principal (bounded: a full cache starts over), dated `at`. */
  private remember(hash: string, principal: Principal | null, at: number): void {
    if (this.cache.size >= AccountsService.MAX_CACHE) {
      this.cache.clear();
      this.hashByKeyId.clear();
    }
    this.cache.set(hash, { principal, at });
  }

  /**
   * Subscribe to key/user changes made on this instance (the fleet feature publishes them to the
   * other instances, which call invalidateKey/invalidateUser with `remote = true`).
   */
  onKeyChanged(listener: (c: KeyChange) => void): void {
    this.listeners.push(listener);
  }

  private emit(c: KeyChange): void {
    for (const l of this.listeners) {
      try {
        l(c);
      } catch {}
    }
  }

  /** Forget cached settings of a key (after an update, rotation or revocation) on this instance. */
  invalidateKey(keyId: string, remote = false): void {
    const hashes = this.hashByKeyId.get(keyId);
    if (hashes) for (const h of hashes) this.cache.delete(h);
    this.hashByKeyId.delete(keyId);
    if (!remote) this.emit({ keyId });
  }

  /** Forget every cached key of a user (role or status change). */
  invalidateUser(userId: string, remote = false): void {
    for (const [h, c] of this.cache) if (c.principal?.userId === userId) this.cache.delete(h);
    if (!remote) this.emit({ userId });
  }

  /**
   * Count one request against a key's `max_requests` with one conditional statement;
   * false when the cap is reached. Only called for keys that have a cap.
   */
  async countRequest(keyId: string): Promise<boolean> {
    return this.store.incrementRequestCount(keyId);
  }

  /** Remember that a key was used; written in batches by flushLastUsed. */
  touch(keyId: string, at = Date.now()): void {
    this.lastUsed.set(keyId, at);
  }

  lastUsedPending(keyId: string): number | undefined {
    return this.lastUsed.get(keyId);
  }

  async flushLastUsed(): Promise<void> {
    if (this.lastUsed.size === 0) return;
    const batch = [...this.lastUsed];
    this.lastUsed.clear();
    await this.store.touchKeys(batch);
  }

  startBackground(onError: (e: unknown) => void, everyMs = 5000): void {
    this.usageTimer = setInterval(() => this.flushLastUsed().catch(onError), everyMs);
    this.usageTimer.unref();
  }

  async close(): Promise<void> {
    if (this.usageTimer) clearInterval(this.usageTimer);
    await this.flushLastUsed();
  }

  /** What a key has spent as far as this instance knows (DB value at last load + local charges). */
  spentOf(keyId: string): number {
    return this.spent.get(keyId) ?? 0;
  }

  addSpend(keyId: string, micros: number): void {
    if (micros > 0) this.spent.set(keyId, (this.spent.get(keyId) ?? 0) + micros);
  }

  resetSpend(keyId: string): void {
    this.spent.delete(keyId);
  }

  private readonly userCreatedListeners: Array<(userId: string) => Promise<void>> = [];
  private readonly keyCreatedListeners: Array<
    (userId: string, key: { id: string; name: string; prefix: string }) => Promise<void>
  > = [];

  /** Called after a user is created (admin or sign-up), before the creating request answers. */
  onUserCreated(fn: (userId: string) => Promise<void>): void {
    this.userCreatedListeners.push(fn);
  }

  /** Called after a user creates an API key, before the creating request answers. */
  onKeyCreated(
    fn: (userId: string, key: { id: string; name: string; prefix: string }) => Promise<void>,
  ): void {
    this.keyCreatedListeners.push(fn);
  }

  async keyCreated(userId: string, key: { id: string; name: string; prefix: string }): Promise<void> {
    for (const l of this.keyCreatedListeners) await l(userId, key);
  }

  async createUser(input: {
    email: string | null;
    username: string | null;
    creditsMicros: number;
    environment: Environment;
    role?: string;
    privyId?: string | null;
    grantKind?: string;
    grantReference?: string | null;
    referredByCode?: string | null;
  }): Promise<CreatedUser> {
    const now = Date.now();
    const user: UserRow = {
      id: newId('usr'),
      email: input.email,
      username: input.username,
      privy_id: input.privyId ?? null,
      role: input.role ?? 'user',
      status: 'active',
      balance_micros: 0,
      held_micros: 0,
      created_at: now,
      updated_at: now,
      referral_code: newReferralCode(),
      referred_by_code: input.referredByCode ?? null,
      display_name: null,
      deleted_at: null,
      trial_balance_micros: 0,
    };
    const k = generateKey(input.environment, this.secret);
    const key: KeyRow = newKeyRow(user.id, k.hash, k.prefix, 'Primary key', input.environment, now, true);
    let balance = 0;
    await this.db.transaction().execute(async (trx) => {
      await this.store.insertUser(user, key, trx);
      if (input.creditsMicros > 0) {
        const r = await this.billing.post(
          {
            userId: user.id,
            kind: input.grantKind ?? 'grant',
            amount: input.creditsMicros,
            reference: input.grantReference ?? null,
            description: 'opening credit',
          },
          now,
          trx,
        );
        balance = r?.balanceAfter ?? 0;
      }
    });
    for (const l of this.userCreatedListeners) await l(user.id);
    return {
      user: { ...user, balance_micros: balance },
      apiKey: k.secret,
      keyId: key.id,
      balanceMicros: balance,
    };
  }

  /** A user by id, or by one of their API keys (for admin routes that accept either). */
  async resolveUser(ref: { user_id?: string; api_key?: string }): Promise<UserRow> {
    if (ref.user_id) {
      const u = await this.store.findUser(ref.user_id);
      if (u) return u;
    } else if (ref.api_key) {
      const k = await this.store.findKeyByHash(this.hash(ref.api_key));
      const u = k ? await this.store.findUser(k.user_id) : undefined;
      if (u) return u;
    } else {
      throw new GatewayError(400, 'Give user_id or api_key', { param: 'user_id' });
    }
    throw new GatewayError(404, 'No such user', {
      code: 'user_not_found',
      param: ref.user_id ? 'user_id' : 'api_key',
    });
  }
}

/** 8 characters, no look-alikes (0/O, 1/I/L): easy to read out and type. */
export function newReferralCode(): string {
  const alphabet = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
  const bytes = randomBytes(8);
  let out = '';
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

export function newKeyRow(
  userId: string,
  hash: string,
  prefix: string,
  name: string,
  environment: Environment,
  now: number,
  primary: boolean,
): KeyRow {
  return {
    id: newId('key'),
    user_id: userId,
    key_hash: hash,
    prefix,
    name,
    environment,
    is_primary: primary ? 1 : 0,
    is_active: 1,
    scopes: null,
    expires_at: null,
    max_requests: null,
    request_count: 0,
    ip_allowlist: null,
    domain_referrers: null,
    allowed_models: null,
    max_spend_micros: null,
    spent_micros: 0,
    last_used_at: null,
    created_at: now,
    updated_at: now,
    previous_key_hash: null,
    previous_expires_at: null,
  };
}

export function toPrincipal(k: KeyRow, role: string, userStatus: string): Principal {
  const key: KeySettings = {
    isActive: k.is_active === 1,
    expiresAt: k.expires_at,
    maxRequests: k.max_requests,
    scopes: parseJson(k.scopes),
    ipAllowlist: parseJson(k.ip_allowlist),
    domainReferrers: parseJson(k.domain_referrers),
    allowedModels: parseJson(k.allowed_models),
    maxSpendMicros: k.max_spend_micros,
    userStatus,
  };
  key.ipAllowed = key.ipAllowlist?.length ? ipMatcher(key.ipAllowlist) : null;
  key.domains = key.domainReferrers?.length
    ? key.domainReferrers.map(normalizeDomain).filter((d): d is string => d !== null)
    : null;
  return {
    kind: 'key',
    userId: k.user_id,
    keyId: k.id,
    role,
    environment: k.environment as Environment,
    key,
  };
}
