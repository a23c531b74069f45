import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import { GatewayError } from '../lib/errors.js';
import type { Principal } from './principal.js';

/** Built-in roles. Custom roles (table `roles`) add named permission sets on top. */
export const BUILTIN_ROLES: Record<string, string[]> = {
  user: [],
  developer: ['monitor:read', 'usage:read', 'models:read'],
  admin: ['*'],
};

export const PERMISSION_RE = /^(\*|[a-z0-9_.-]+:(\*|[a-z0-9_.-]+))$/;
export const ROLE_NAME_RE = /^[a-z][a-z0-9_-]{1,49}$/;

/** `resource:action` against a pattern; `*` matches everything, `resource:*` every action. */
export function permissionMatches(pattern: string, permission: string): boolean {
  if (pattern === '*' || pattern === permission) return true;
  const [pr, pa] = pattern.split(':');
  const [r, a] = permission.split(':');
  return (pr === '*' || pr === r) && (pa === '*' || pa === a);
}

/**
 * Role → permissions, held in memory (admin traffic is light, but the auth hook still never reads
 * the database per request). Changes on this instance apply at once; other instances reload every
 * `reloadMs`.
 */
export class Roles {
  private custom = new Map<string, { permissions: string[]; description: string | null }>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly reloadMs = 10_000,
  ) {}

  async load(): Promise<void> {
    const rows = await this.db.selectFrom('roles').selectAll().execute();
    const next = new Map<string, { permissions: string[]; description: string | null }>();
    for (const r of rows) {
      let perms: string[] = [];
      try {
        perms = JSON.parse(r.permissions) as string[];
      } catch {}
      next.set(r.name, { permissions: perms, description: r.description });
    }
    this.custom = next;
  }

  start(onError: (e: unknown) => void): void {
    this.timer = setInterval(() => this.load().catch(onError), this.reloadMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  exists(name: string): boolean {
    return name in BUILTIN_ROLES || this.custom.has(name);
  }

  permissionsOf(role: string): string[] {
    return BUILTIN_ROLES[role] ?? this.custom.get(role)?.permissions ?? [];
  }

  /** Does the principal hold `permission`? The bootstrap admin key holds every permission. */
  can(p: Principal, permission: string): boolean {
    if (p.kind === 'admin') return true;
    return this.permissionsOf(p.role).some((pat) => permissionMatches(pat, permission));
  }

  list(): Array<{ name: string; permissions: string[]; description: string | null; builtin: boolean }> {
    const out = Object.entries(BUILTIN_ROLES).map(([name, permissions]) => ({
      name,
      permissions,
      description: null as string | null,
      builtin: true,
    }));
    for (const [name, r] of this.custom) out.push({ name, ...r, builtin: false });
    return out;
  }

  async upsert(name: string, permissions: string[], description: string | null, now: number): Promise<void> {
    if (name in BUILTIN_ROLES)
      throw new GatewayError(400, `The built-in role '${name}' cannot be changed`, { param: 'name' });
    if (!ROLE_NAME_RE.test(name))
      throw new GatewayError(400, 'Role names are 2-50 characters: a-z, 0-9, _ and -', { param: 'name' });
    for (const p of permissions)
      if (!PERMISSION_RE.test(p))
        throw new GatewayError(400, `Invalid permission '${p}': use resource:action (either may be *)`, {
          param: 'permissions',
        });
    const json = JSON.stringify([...new Set(permissions)]);
    const r = await this.db
      .updateTable('roles')
      .set({ permissions: json, description, updated_at: now })
      .where('name', '=', name)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0)
      await this.db
        .insertInto('roles')
        .values({ name, permissions: json, description, created_at: now, updated_at: now })
        .execute();
    this.custom.set(name, { permissions: JSON.parse(json), description });
  }

  async remove(name: string, inUse: () => Promise<boolean>): Promise<boolean> {
    if (name in BUILTIN_ROLES)
      throw new GatewayError(400, `The built-in role '${name}' cannot be deleted`, { param: 'name' });
    if (await inUse())
      throw new GatewayError(409, `Role '${name}' is assigned to users; reassign them first`, {
        code: 'role_in_use',
      });
    const r = await this.db.deleteFrom('roles').where('name', '=', name).executeTakeFirst();
    this.custom.delete(name);
    return Number(r.numDeletedRows) > 0;
  }
}
