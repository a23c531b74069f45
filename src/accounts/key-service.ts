import { isUniqueViolation } from '../billing/store.js';
import { badRequest, GatewayError, notFound } from '../lib/errors.js';
import { microsToUsd, usdToMicros } from '../lib/money.js';
import { type Environment, normalizeEnvironment } from './keys.js';
import { invalidIpEntry, normalizeDomain } from './restrictions.js';
import { type AccountsService, newKeyRow } from './service.js';
import type { KeyRow } from './store.js';

export interface KeySettingsInput {
  key_name?: string;
  environment_tag?: string;
  scope_permissions?: Record<string, string[]> | null;
  expiration_days?: number | null;
  max_requests?: number | null;
  ip_allowlist?: string[] | null;
  domain_referrers?: string[] | null;
  allowed_models?: string[] | null;
  max_spend_usd?: number | null;
  is_active?: boolean;
}

const DAY_MS = 86_400_000;

/** A key as its owner sees it: settings and usage, never the secret or its hash. */
export function keyView(k: KeyRow, lastUsedPending?: number) {
  const lastUsed = Math.max(k.last_used_at ?? 0, lastUsedPending ?? 0) || null;
  const iso = (t: number | null | undefined) => (t ? new Date(t).toISOString() : null);
  const json = (s: string | null) => (s ? JSON.parse(s) : null);
  return {
    id: k.id,
    key_name: k.name,
    key_prefix: k.prefix,
    environment_tag: k.environment,
    is_primary: k.is_primary === 1,
    is_active: k.is_active === 1,
    scope_permissions: json(k.scopes),
    expires_at: iso(k.expires_at),
    max_requests: k.max_requests,
    requests_used: k.request_count,
    ip_allowlist: json(k.ip_allowlist),
    domain_referrers: json(k.domain_referrers),
    allowed_models: json(k.allowed_models),
    max_spend_usd: k.max_spend_micros === null ? null : microsToUsd(k.max_spend_micros),
    spent_usd: microsToUsd(k.spent_micros),
    last_used_at: iso(lastUsed),
    created_at: iso(k.created_at),
    updated_at: iso(k.updated_at),
    rotation_grace_until:
      k.previous_expires_at && k.previous_expires_at > Date.now() ? iso(k.previous_expires_at) : null,
  };
}

/** Validated column values for the settings that were given (undefined = leave as is). */
function settingsPatch(b: KeySettingsInput, now: number): Partial<KeyRow> {
  const patch: Partial<KeyRow> = {};
  if (b.key_name !== undefined) {
    const name = b.key_name.trim();
    if (!name) throw badRequest('key_name must not be empty', 'key_name');
    patch.name = name;
  }
  if (b.scope_permissions !== undefined) {
    if (b.scope_permissions !== null) {
      for (const [action, list] of Object.entries(b.scope_permissions)) {
        if (!/^[a-z*][a-z0-9_*]*$/.test(action))
          throw badRequest(`scope_permissions has an invalid action '${action}'`, 'scope_permissions');
        if (!Array.isArray(list) || list.some((x) => typeof x !== 'string' || !x))
          throw badRequest(`scope_permissions.${action} must be a list of resources`, 'scope_permissions');
      }
    }
    patch.scopes = b.scope_permissions === null ? null : JSON.stringify(b.scope_permissions);
  }
  if (b.expiration_days !== undefined)
    patch.expires_at = b.expiration_days === null ? null : now + Math.round(b.expiration_days * DAY_MS);
  if (b.max_requests !== undefined) patch.max_requests = b.max_requests;
  if (b.ip_allowlist !== undefined) {
    for (const e of b.ip_allowlist ?? []) {
      const why = invalidIpEntry(e.trim());
      if (why) throw badRequest(`ip_allowlist: ${why}`, 'ip_allowlist');
    }
    patch.ip_allowlist = b.ip_allowlist?.length ? JSON.stringify(b.ip_allowlist.map((e) => e.trim())) : null;
  }
  if (b.domain_referrers !== undefined) {
    const domains = (b.domain_referrers ?? []).map((d) => {
      const n = normalizeDomain(d);
      if (!n) throw badRequest(`domain_referrers: '${d}' is not a domain`, 'domain_referrers');
      return n;
    });
    patch.domain_referrers = domains.length ? JSON.stringify(domains) : null;
  }
  if (b.allowed_models !== undefined)
    patch.allowed_models = b.allowed_models?.length ? JSON.stringify(b.allowed_models) : null;
  if (b.max_spend_usd !== undefined)
    patch.max_spend_micros = b.max_spend_usd === null ? null : usdToMicros(b.max_spend_usd);
  if (b.is_active !== undefined) patch.is_active = b.is_active ? 1 : 0;
  return patch;
}

/** API-key management for a signed-in user; every change invalidates the cached principal at once. */
export class KeyService {
  constructor(
    private readonly accounts: AccountsService,
    private readonly maxKeysPerUser: number,
  ) {}

  private get store() {
    return this.accounts.store;
  }

  /** The caller's own key, or 404 (never another user's key, never whether it exists). */
  async owned(userId: string, keyId: string): Promise<KeyRow> {
    const k = await this.store.findKey(keyId);
    if (!k || k.user_id !== userId) throw notFound('No such API key', 'api_key_not_found', 'key_id');
    return k;
  }

  async list(userId: string) {
    const rows = await this.store.listKeys(userId);
    return rows.map((k) => keyView(k, this.accounts.lastUsedPending(k.id)));
  }

  async create(userId: string, b: KeySettingsInput & { key_name: string }) {
    const env = normalizeEnvironment(b.environment_tag);
    if (!env)
      throw badRequest('environment_tag must be live, test, staging or development', 'environment_tag');
    const now = Date.now();
    const patch = settingsPatch(b, now);
    if ((await this.store.countKeys(userId)) >= this.maxKeysPerUser)
      throw new GatewayError(409, `A user may have at most ${this.maxKeysPerUser} API keys`, {
        code: 'key_limit_reached',
      });
    const k = this.accounts.keygen(env as Environment);
    const row: KeyRow = { ...newKeyRow(userId, k.hash, k.prefix, patch.name!, env, now, false), ...patch };
    try {
      await this.store.insertKey(row);
    } catch (err) {
      if (isUniqueViolation(err)) throw duplicateName();
      throw err;
    }
    await this.accounts.keyCreated(userId, { id: row.id, name: row.name, prefix: row.prefix });
    return { secret: k.secret, key: keyView(row) };
  }

  async update(userId: string, keyId: string, b: KeySettingsInput) {
    const before = await this.owned(userId, keyId);
    const now = Date.now();
    const patch = settingsPatch(b, now);
    if (b.environment_tag !== undefined)
      throw badRequest('environment_tag cannot change; create a new key instead', 'environment_tag');
    patch.updated_at = now;
    try {
      await this.store.updateKey(keyId, patch);
    } catch (err) {
      if (isUniqueViolation(err)) throw duplicateName();
      throw err;
    }
    this.accounts.invalidateKey(keyId);
    const after = { ...before, ...patch };
    return { before, after, key: keyView(after, this.accounts.lastUsedPending(keyId)) };
  }

  /** New secret for the same key id; the old one stops now, or after `graceSeconds`. */
  async rotate(userId: string, keyId: string, graceSeconds: number) {
    const before = await this.owned(userId, keyId);
    const now = Date.now();
    const k = this.accounts.keygen(before.environment as Environment);
    const patch: Partial<KeyRow> = {
      key_hash: k.hash,
      prefix: k.prefix,
      previous_key_hash: graceSeconds > 0 ? before.key_hash : null,
      previous_expires_at: graceSeconds > 0 ? now + graceSeconds * 1000 : null,
      updated_at: now,
    };
    await this.store.updateKey(keyId, patch);
    this.accounts.invalidateKey(keyId);
    return { secret: k.secret, key: keyView({ ...before, ...patch }) };
  }

  async revoke(userId: string, keyId: string) {
    const k = await this.owned(userId, keyId);
    await this.store.deleteKey(keyId);
    this.accounts.invalidateKey(keyId);
    this.accounts.resetSpend(keyId);
    return k;
  }
}

const duplicateName = () =>
  new GatewayError(409, 'You already have an API key with this key_name', {
    code: 'duplicate_key_name',
    param: 'key_name',
  });
