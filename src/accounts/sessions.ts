import { GatewayError, unauthorized } from '../lib/errors.js';
import type { Principal } from './principal.js';
import type { PrivyVerifier } from './privy.js';
import type { AccountsStore } from './store.js';

/** Three base64url parts: header.payload.signature (a Privy access token is a few hundred bytes). */
const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export function looksLikeJwt(s: string): boolean {
  return s.length <= 8192 && JWT_RE.test(s);
}

/**
 * Sign-in sessions: a Privy access token presented as the bearer (the dashboard's Privy sign-in)
 * becomes the user's principal, found by Privy DID. The account must exist already — POST
 * /auth/privy creates it — and be active. Inference routes refuse sessions (src/http/auth.ts).
 */
export class PrivySessions {
  constructor(
    private readonly verifier: PrivyVerifier,
    private readonly store: AccountsStore,
  ) {}

  /**
   * The session's principal and the token's expiry (ms), or null for a forged, expired or foreign
   * token (an authentication failure). A valid token whose user cannot sign in throws.
   */
  async resolve(token: string): Promise<{ principal: Principal; expiresAt: number } | null> {
    let claims: { sub: string; exp?: number };
    try {
      claims = await this.verifier.verify(token);
    } catch (err) {
      if (err instanceof GatewayError && err.status === 401) return null;
      throw err;
    }
    const user = await this.store.findUserByPrivyId(claims.sub);
    if (!user || user.status === 'deleted')
      throw unauthorized(
        'No Gatewayz account belongs to this Privy user yet: sign up first with POST /auth/privy',
        'privy_user_not_found',
      );
    if (user.status !== 'active')
      throw new GatewayError(403, 'This account is suspended', { code: 'account_suspended' });
    return {
      principal: {
        kind: 'session',
        userId: user.id,
        keyId: null,
        role: user.role,
        environment: null,
        key: null,
      },
      expiresAt: claims.exp! * 1000,
    };
  }
}
