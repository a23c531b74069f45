import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { UsageStats } from '../admin/stats.js';
import { adminUserRoutes } from '../admin/users.js';
import { AuditLog } from '../audit/log.js';
import { auditRoutes } from '../audit/routes.js';
import { AuditStore } from '../audit/store.js';
import type { BillingStore } from '../billing/store.js';
import type { Database } from '../db/schema.js';
import type { AccountsConfig } from './config.js';
import { KeyService } from './key-service.js';
import { PrivyLogin, PrivyVerifier } from './privy.js';
import { ProfileService } from './profile.js';
import { profileRoutes } from './profile-routes.js';
import { Roles } from './roles.js';
import { accountsRoutes } from './routes.js';
import type { AccountsService } from './service.js';
import { PrivySessions } from './sessions.js';
import { AuthThrottle } from './throttle.js';

/**
 * Accounts and access, assembled: roles, the audit log writer, brute-force throttle, key
 * management, Privy login and sessions, profile, and the admin API over users and usage.
 */
export class Access {
  readonly audit: AuditLog;
  readonly auditStore: AuditStore;
  readonly roles: Roles;
  readonly throttle: AuthThrottle;
  readonly keys: KeyService;
  readonly profile: ProfileService;
  readonly stats: UsageStats;
  readonly privy: PrivyLogin;

  private constructor(
    private readonly db: Kysely<Database>,
    private readonly accounts: AccountsService,
    private readonly billing: BillingStore,
    private readonly log: FastifyBaseLogger,
    private readonly cfg: AccountsConfig,
  ) {
    this.auditStore = new AuditStore(db);
    this.audit = new AuditLog(this.auditStore, log);
    this.roles = new Roles(db);
    this.throttle = new AuthThrottle(cfg.authFailuresPerMinute, this.audit);
    this.keys = new KeyService(accounts, cfg.maxKeysPerUser);
    this.profile = new ProfileService(db, accounts);
    this.stats = new UsageStats(db);
    const verifier = new PrivyVerifier(cfg);
    this.privy = new PrivyLogin(verifier, accounts, this.audit, cfg, this.keys, this.throttle);
    // With Privy configured, its access tokens are bearer sessions too (the dashboard's Privy sign-in).
    if (verifier.configured) accounts.acceptSessions(new PrivySessions(verifier, accounts.store));
  }

  static async create(
    db: Kysely<Database>,
    accounts: AccountsService,
    billing: BillingStore,
    log: FastifyBaseLogger,
    cfg: AccountsConfig,
  ): Promise<Access> {
    const a = new Access(db, accounts, billing, log, cfg);
    await a.roles.load();
    const warn = (msg: string) => (err: unknown) => log.warn({ err }, msg);
    a.roles.start(warn('roles reload failed'));
    a.throttle.start();
    accounts.startBackground(warn('last_used_at flush failed'));
    return a;
  }

  /** Login, keys, profile, audit and admin routes. */
  routes(app: FastifyInstance): void {
    accountsRoutes(app, { keys: this.keys, audit: this.audit, privy: this.privy, config: this.cfg });
    profileRoutes(app, this.profile, this.stats, this.audit);
    auditRoutes(app, this.auditStore);
    adminUserRoutes(app, {
      db: this.db,
      accounts: this.accounts,
      billing: this.billing,
      roles: this.roles,
      audit: this.audit,
      stats: this.stats,
    });
  }

  /** After the HTTP server has stopped: write pending last-used times and audit rows. */
  async close(): Promise<void> {
    this.roles.stop();
    this.throttle.close();
    await this.accounts.close().catch((err) => this.log.warn({ err }, 'last_used_at flush failed'));
    await this.audit.close();
  }
}
