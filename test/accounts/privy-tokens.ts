import { exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from 'jose';

export const APP_ID = 'clapp-test-0001';

export interface PrivyKeys {
  privateKey: CryptoKey;
  publicPem: string;
  jwk: JWK;
}

/** An ES256 key pair of our own, standing in for a Privy app's signing key. */
export async function privyKeys(): Promise<PrivyKeys> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return {
    privateKey: privateKey as CryptoKey,
    publicPem: await exportSPKI(publicKey),
    jwk: { ...(await exportJWK(publicKey)), kid: 'test-kid', alg: 'ES256', use: 'sig' },
  };
}

export interface MintOptions {
  sub?: string;
  aud?: string;
  iss?: string;
  expSeconds?: number;
  kid?: string;
  /** Privy's session id claim (tokens of one session differ only by it and the times). */
  sid?: string;
}

/** A Privy-style access token: ES256, iss privy.io, aud = app id, sub = did:privy:… */
export function mint(keys: PrivyKeys, o: MintOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sid: o.sid ?? 'session-1' })
    .setProtectedHeader({ alg: 'ES256', typ: 'JWT', ...(o.kid ? { kid: o.kid } : {}) })
    .setSubject(o.sub ?? `did:privy:${Math.random().toString(36).slice(2)}`)
    .setIssuer(o.iss ?? 'privy.io')
    .setAudience(o.aud ?? APP_ID)
    .setIssuedAt(now - 10)
    .setExpirationTime(now + (o.expSeconds ?? 3600))
    .sign(keys.privateKey);
}

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

/** The same claims, unsigned (`alg: none`). */
export function unsigned(sub: string): string {
  const now = Math.floor(Date.now() / 1000);
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub, iss: 'privy.io', aud: APP_ID, iat: now, exp: now + 3600 })}.`;
}

/** A valid token with its payload changed after signing. */
export function tamper(token: string, sub: string): string {
  const [h, p, s] = token.split('.');
  const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
  payload.sub = sub;
  return `${h}.${b64(payload)}.${s}`;
}
