import type { Kysely } from 'kysely';
import type { BillingStore } from '../billing/store.js';
import type { Database } from '../db/schema.js';
import { GatewayError } from '../lib/errors.js';
import { newId } from '../lib/ids.js';
import { type Environment, generateKey, hashKey, secretsEqual } from './keys.js';
import type { KeySettings, Principal } from './principal.js';
import type { AccountsStore, KeyRow, UserRow } from './store.js';

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
  private readonly hashByKeyId = new Map<string, string>();
  private static readonly MAX_CACHE = 50_000;

  constructor(
    private readonly db: Kysely<Database>,
    readonly store: AccountsStore,
    private readonly billing: BillingStore,
    private readonly secret: string,
    private readonly adminKey: string | null,
    private readonly cacheTtlMs: number,
  ) {}

  hash(secret: string): string {
    return hashKey(secret, this.secret);
  }

  /** The principal for a presented secret, or null. Never says which part was wrong. */
  async authenticate(presented: string): Promise<Principal | null> {
    if (this.adminKey && secretsEqual(presented, this.adminKey, this.secret)) {
      return { kind: 'admin', userId: null, keyId: null, role: 'admin', environment: null, key: null };
    }
    if (!presented.startsWith('gw_') || presented.length > 100) return null;
    const hash = this.hash(presented);
    const now = Date.now();
    const hit = this.cache.get(hash);
    if (hit && now - hit.at < this.cacheTtlMs) return hit.principal;
    const row = await this.store.findKeyWithUser(hash);
    const principal = row ? toPrincipal(row, row.user_role, row.user_status) : null;
    if (this.cache.size >= AccountsService.MAX_CACHE) this.cache.clear();
    this.cache.set(hash, { principal, at: now });
    if (row) this.hashByKeyId.set(row.id, hash);
    return principal;
  }

  /** Forget cached settings of a key (after an update, rotation or revocation) on this instance. */
  invalidateKey(keyId: string): void {
    const h = this.hashByKeyId.get(keyId);
    if (h) this.cache.delete(h);
  }

  /** Forget every cached key of a user (role or status change). */
  invalidateUser(userId: string): void {
    for (const [h, c] of this.cache) if (c.principal?.userId === userId) this.cache.delete(h);
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
  return {
    kind: 'key',
    userId: k.user_id,
    keyId: k.id,
    role,
    environment: k.environment as Environment,
    key,
  };
}
