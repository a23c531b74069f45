import type { JWTPayload, JWTVerifyGetKey, KeyObject } from 'jose';
import type { AuditLog } from '../audit/log.js';
import { isUniqueViolation } from '../billing/store.js';
import { GatewayError, unauthorized } from '../lib/errors.js';
import type { AccountsConfig } from './config.js';
import type { AccountsService } from './service.js';
import type { UserRow } from './store.js';
import type { AuthThrottle } from './throttle.js';

/** jose is loaded only when Privy sign-in is configured (otherwise ~0.6 MiB of memory for nothing). */
const jose = () => import('jose');

/**
 * Verifies Privy access tokens for real: ES256 signature against the app's verification key
 * (PEM) or its JWKS, issuer `privy.io`, audience = the app id, expiry. `sub` is the Privy DID.
 */
export class PrivyVerifier {
  private key: Promise<KeyObject | CryptoKey> | null = null;
  private jwks: Promise<JWTVerifyGetKey> | null = null;

  constructor(private readonly cfg: AccountsConfig) {
    const key = cfg.privyVerificationKey;
    const jwksUrl = cfg.privyJwksUrl;
    if (key) this.key = jose().then((j) => j.importSPKI(key, 'ES256'));
    else if (jwksUrl) this.jwks = jose().then((j) => j.createRemoteJWKSet(new URL(jwksUrl)));
  }

  get configured(): boolean {
    return Boolean(this.cfg.privyAppId && (this.key || this.jwks));
  }

  /** The verified claims, or throws 401 without saying what was wrong with the token. */
  async verify(token: string): Promise<JWTPayload & { sub: string }> {
    if (!this.configured)
      throw new GatewayError(503, 'Privy login is not configured (PRIVY_APP_ID and a verification key)', {
        code: 'privy_not_configured',
      });
    const opts = { issuer: 'privy.io', audience: this.cfg.privyAppId!, algorithms: ['ES256'] };
    try {
      const { jwtVerify } = await jose();
      const { payload } = this.key
        ? await jwtVerify(token, await this.key, opts)
        : await jwtVerify(token, await this.jwks!, opts);
      if (typeof payload.sub !== 'string' || !payload.sub.startsWith('did:privy:')) throw new Error('sub');
      if (payload.exp === undefined) throw new Error('exp');
      return payload as JWTPayload & { sub: string };
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      throw unauthorized('Invalid or expired Privy access token', 'invalid_privy_token');
    }
  }
}

export interface PrivyLoginInput {
  token: string;
  email?: string;
  username?: string;
  referral_code?: string;
  environment_tag?: string;
  /** Issue a new API key for an existing user (keys are only shown once, so a returning user may need one). */
  issue_key?: boolean;
}

export interface LoginContext {
  ip: string;
  userAgent: string | null;
}

/** Sign in by Privy DID only (never by username or email); a new DID becomes a new user. */
export class PrivyLogin {
  constructor(
    private readonly verifier: PrivyVerifier,
    private readonly accounts: AccountsService,
    private readonly audit: AuditLog,
    private readonly cfg: AccountsConfig,
    private readonly keys: {
      create(userId: string, b: { key_name: string }): Promise<{ secret: string; key: { id: string } }>;
    },
    private readonly throttle: AuthThrottle,
  ) {}

  async login(b: PrivyLoginInput, ctx: LoginContext) {
    const wait = this.throttle.blockedFor(ctx.ip);
    if (wait > 0)
      throw new GatewayError(
        429,
        'Too many failed authentication attempts from this address; try again later',
        {
          code: 'too_many_auth_failures',
          headers: { 'retry-after': String(wait) },
        },
      );
    let claims: { sub: string };
    try {
      claims = await this.verifier.verify(b.token);
    } catch (err) {
      // Counted and audited with the IP like a wrong API key (aggregated, so forged tokens cannot flood the log).
      if (err instanceof GatewayError && err.status === 401)
        this.throttle.fail(ctx.ip, ctx.userAgent, 'invalid_privy_token', 'privy_token');
      throw err;
    }
    const privyId = claims.sub;
    let user = await this.accounts.store.findUserByPrivyId(privyId);
    let apiKey: string | null = null;
    let isNew = false;
    if (!user) {
      const created = await this.create(privyId, b).catch(async (err) => {
        // Two first sign-ins at once: the unique privy_id index lets one win; the other signs in.
        if (!isUniqueViolation(err)) throw err;
        return null;
      });
      if (created) {
        user = created.user;
        apiKey = created.apiKey;
        isNew = true;
      } else {
        user = await this.accounts.store.findUserByPrivyId(privyId);
        if (!user) throw new GatewayError(409, 'Sign-in conflict; try again', { code: 'conflict' });
      }
    }
    if (user.status !== 'active')
      throw new GatewayError(403, 'This account is suspended', { code: 'account_suspended' });
    if (!isNew && b.issue_key) {
      const k = await this.keys.create(user.id, { key_name: `Login ${new Date().toISOString()}` });
      apiKey = k.secret;
      void this.audit.record({
        userId: user.id,
        actor: `user:${user.id}`,
        action: 'api_key.create',
        resourceType: 'api_key',
        resourceId: k.key.id,
        details: { via: 'privy_login' },
        ip: ctx.ip,
        userAgent: ctx.userAgent,
      });
    }
    void this.audit.record({
      userId: user.id,
      actor: `user:${user.id}`,
      action: isNew ? 'auth.signup' : 'auth.login',
      resourceType: 'user',
      resourceId: user.id,
      details: { method: 'privy', ...(isNew && b.referral_code ? { referral_code: b.referral_code } : {}) },
      ip: ctx.ip,
      userAgent: ctx.userAgent,
    });
    const fresh = (await this.accounts.store.findUser(user.id)) ?? user;
    return { user: fresh, apiKey, isNew };
  }

  private async create(privyId: string, b: PrivyLoginInput) {
    const store = this.accounts.store;
    // Email and username are profile data only: kept when free, never used to find an account.
    const email = b.email ? b.email.toLowerCase() : null;
    const emailFree = email ? !(await store.findUserByEmail(email)) : false;
    const username = b.username && !(await store.findUserByUsername(b.username)) ? b.username : null;
    // Only a code that belongs to a user is kept (commerce pays referral rewards from it).
    const code = b.referral_code?.trim().toUpperCase() || null;
    const referredBy = code && (await store.findUserByReferralCode(code)) ? code : null;
    return this.accounts.createUser({
      email: emailFree ? email : null,
      username,
      privyId,
      creditsMicros: this.cfg.signupCreditsMicros,
      environment: 'live',
      grantKind: 'signup_grant',
      grantReference: privyId,
      referredByCode: referredBy,
    });
  }
}

export type { UserRow };
