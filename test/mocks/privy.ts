// A local Privy auth API speaking the routes @privy-io/js-sdk-core calls for e-mail sign-in
// (their paths are those of @privy-io/routes): app config, analytics, passwordless init and
// authenticate, session refresh and logout, plus the app's JWKS. Tokens are real ES256 JWTs.
import { randomBytes, randomInt } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import { APP_ID, mint, type PrivyKeys, privyKeys } from '../accounts/privy-tokens.js';
import { readBody } from './http.js';

export interface MockPrivyCall {
  method: string;
  path: string;
  origin: string | null;
  appId: string | null;
  clientId: string | null;
  body: any;
  status: number;
}

export interface MockPrivy {
  url: string;
  appId: string;
  clientId: string | null;
  keys: PrivyKeys;
  /** The app's JWKS (what PRIVY_JWKS_URL points at). */
  jwksUrl: string;
  calls: MockPrivyCall[];
  /** The one-time code last "e-mailed" to this address (what the user would read in their inbox). */
  lastCode(email: string): string | undefined;
  /** The Privy DID of the user with this e-mail, once they have signed in. */
  didOf(email: string): string | undefined;
  /** Lifetime of access tokens issued from now on (the SDK refreshes a token within 30 s of expiry). */
  tokenTtlSeconds: number;
  /** Successful session refreshes (POST /api/v1/sessions). */
  refreshes: number;
  /** Sessions ended by POST /api/v1/sessions/logout. */
  logouts: number;
  /** Mint an access token for a DID directly (as Privy would for that user). */
  accessToken(did: string, ttlSeconds?: number): Promise<string>;
  close(): Promise<void>;
}

export interface MockPrivyOptions {
  appId?: string;
  /** When set, requests must carry this `privy-client-id`. */
  clientId?: string;
  keys?: PrivyKeys;
}

interface PrivyUser {
  id: string;
  email: string;
  createdAt: number;
}

const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** The app settings the SDK reads at start: e-mail login only, no captcha, no embedded wallets. */
function appConfig(appId: string, keys: PrivyKeys) {
  return {
    id: appId,
    name: 'Gatewayz (local Privy)',
    accent_color: null,
    allowed_domains: [],
    allowed_native_app_ids: [],
    allowed_native_app_url_schemes: [],
    allowlist_config: { error_title: null, error_detail: null, cta_text: null, cta_link: null },
    allowlist_enabled: false,
    apple_oauth: false,
    captcha_enabled: false,
    enabled_captcha_provider: null,
    custom_api_url: null,
    custom_jwt_auth: false,
    custom_oauth_providers: [],
    data_classification: 'public',
    disable_plus_emails: false,
    discord_oauth: false,
    email_auth: true,
    embedded_wallet_config: {
      create_on_login: 'off',
      ethereum: { create_on_login: 'off' },
      solana: { create_on_login: 'off' },
      user_owned_recovery_options: [],
      require_user_owned_recovery_on_create: false,
      require_user_password_on_create: false,
      mode: 'legacy-embedded-wallets-only',
    },
    enforce_wallet_uis: false,
    external_wallets_for_signup_enabled: false,
    farcaster_auth: false,
    farcaster_link_wallets_enabled: false,
    fiat_on_ramp_enabled: false,
    github_oauth: false,
    google_oauth: false,
    guest_auth: false,
    icon_url: null,
    instagram_oauth: false,
    legacy_wallet_ui_config: false,
    legal_name: null,
    line_oauth: false,
    linkedin_oauth: false,
    logo_url: null,
    max_linked_wallets_per_user: null,
    merge_accounts_by_email: false,
    mfa_methods: [],
    passkey_auth: false,
    passkeys_for_signup_enabled: false,
    privacy_policy_url: null,
    require_users_accept_terms: false,
    show_wallet_login_first: false,
    smart_wallet_config: { enabled: false },
    sms_auth: false,
    solana_wallet_auth: false,
    spotify_oauth: false,
    telegram_auth: false,
    telegram_oauth: false,
    terms_and_conditions_url: null,
    theme: 'light',
    tiktok_oauth: false,
    twitch_oauth: false,
    twitter_oauth: false,
    twitter_oauth_on_mobile_enabled: false,
    verification_key: keys.publicPem,
    wallet_auth: false,
    wallet_connect_cloud_project_id: null,
    whatsapp_enabled: false,
  };
}

export async function startMockPrivy(o: MockPrivyOptions = {}): Promise<MockPrivy> {
  const appId = o.appId ?? APP_ID;
  const keys = o.keys ?? (await privyKeys());
  const codes = new Map<string, string>();
  const users = new Map<string, PrivyUser>();
  /** refresh token → DID */
  const refreshTokens = new Map<string, string>();
  const calls: MockPrivyCall[] = [];

  const userJson = (u: PrivyUser) => {
    const t = Math.floor(u.createdAt / 1000);
    return {
      id: u.id,
      created_at: t,
      linked_accounts: [
        {
          type: 'email',
          address: u.email,
          verified_at: t,
          first_verified_at: t,
          latest_verified_at: t,
        },
      ],
      mfa_methods: [],
      has_accepted_terms: false,
      is_guest: false,
    };
  };

  const accessToken = (did: string, ttl = mock.tokenTtlSeconds) =>
    mint(keys, {
      sub: did,
      aud: appId,
      expSeconds: ttl,
      sid: randomBytes(8).toString('hex'),
      kid: keys.jwk.kid,
    });

  const identityToken = (u: PrivyUser) =>
    new SignJWT({ linked_accounts: JSON.stringify(userJson(u).linked_accounts) })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: keys.jwk.kid })
      .setSubject(u.id)
      .setIssuer('privy.io')
      .setAudience(appId)
      .setIssuedAt()
      .setExpirationTime('10h')
      .sign(keys.privateKey);

  /** What Privy answers to a sign-in or a refresh: the user and a fresh token set. */
  const tokens = async (u: PrivyUser, isNew: boolean) => {
    const refresh = randomBytes(24).toString('base64url');
    refreshTokens.set(refresh, u.id);
    return {
      user: userJson(u),
      token: await accessToken(u.id),
      privy_access_token: null,
      refresh_token: refresh,
      identity_token: await identityToken(u),
      is_new_user: isNew,
      session_update_action: 'set',
    };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, call: MockPrivyCall) => {
    const send = (status: number, body: unknown) => {
      call.status = status;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const path = call.path;
    if (req.method === 'GET' && path === '/jwks.json') return send(200, { keys: [keys.jwk] });
    if (!path.startsWith('/api/v1/')) return send(404, { error: `Not found: ${path}` });
    if (call.appId !== appId)
      return send(403, { error: 'Missing or invalid Privy app ID', code: 'missing_or_invalid_privy_app_id' });
    if (o.clientId && call.clientId !== o.clientId)
      return send(403, {
        error: 'Missing or invalid Privy client ID',
        code: 'missing_or_invalid_privy_client_id',
      });
    const b = call.body ?? {};
    const route = `${req.method} ${path}`;
    if (route === `GET /api/v1/apps/${appId}`) return send(200, appConfig(appId, keys));
    if (req.method === 'GET' && path.startsWith('/api/v1/apps/'))
      return send(403, { error: 'Missing or invalid Privy app ID', code: 'missing_or_invalid_privy_app_id' });
    if (route === 'POST /api/v1/analytics_events') return send(200, {});
    if (route === 'POST /api/v1/passwordless/init') {
      const email = typeof b.email === 'string' ? b.email.trim().toLowerCase() : '';
      if (!EMAIL_RE.test(email)) return send(400, { error: 'Invalid email address', code: 'invalid_data' });
      codes.set(email, String(randomInt(0, 1_000_000)).padStart(6, '0'));
      return send(200, { success: true });
    }
    if (route === 'POST /api/v1/passwordless/authenticate') {
      const email = typeof b.email === 'string' ? b.email.trim().toLowerCase() : '';
      const expected = codes.get(email);
      if (!expected || b.code !== expected)
        return send(401, { error: 'Invalid email and code combination', code: 'invalid_credentials' });
      codes.delete(email);
      let u = users.get(email);
      const isNew = !u;
      if (!u) {
        u = { id: `did:privy:${randomBytes(12).toString('hex')}`, email, createdAt: Date.now() };
        users.set(email, u);
      }
      return send(200, await tokens(u, isNew));
    }
    if (route === 'POST /api/v1/sessions') {
      const did = typeof b.refresh_token === 'string' ? refreshTokens.get(b.refresh_token) : undefined;
      const u = did ? [...users.values()].find((x) => x.id === did) : undefined;
      if (!u) return send(401, { error: 'Invalid refresh token', code: 'missing_or_invalid_token' });
      refreshTokens.delete(b.refresh_token);
      mock.refreshes++;
      return send(200, await tokens(u, false));
    }
    if (route === 'POST /api/v1/sessions/logout') {
      if (typeof b.refresh_token === 'string') refreshTokens.delete(b.refresh_token);
      mock.logouts++;
      return send(200, {});
    }
    return send(404, { error: `Not found: ${route}` });
  };

  const server = createServer(async (req, res) => {
    const origin = typeof req.headers.origin === 'string' ? req.headers.origin : null;
    // The browser calls from the dashboard's origin with credentials: echo the origin, never `*`.
    if (origin) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-allow-credentials', 'true');
      res.setHeader('vary', 'Origin');
    }
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'access-control-allow-methods': 'GET, POST, DELETE, OPTIONS',
        'access-control-allow-headers': String(req.headers['access-control-request-headers'] ?? ''),
        'access-control-max-age': '600',
      });
      res.end();
      return;
    }
    const text = await readBody(req);
    let body: any = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {}
    const header = (n: string) => (typeof req.headers[n] === 'string' ? (req.headers[n] as string) : null);
    const call: MockPrivyCall = {
      method: req.method ?? 'GET',
      path,
      origin,
      appId: header('privy-app-id'),
      clientId: header('privy-client-id'),
      body,
      status: 0,
    };
    calls.push(call);
    try {
      await handle(req, res, call);
    } catch (err) {
      call.status = 500;
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: String(err) }));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const mock: MockPrivy = {
    url,
    appId,
    clientId: o.clientId ?? null,
    keys,
    jwksUrl: `${url}/jwks.json`,
    calls,
    lastCode: (email) => codes.get(email.trim().toLowerCase()),
    didOf: (email) => users.get(email.trim().toLowerCase())?.id,
    tokenTtlSeconds: 3600,
    refreshes: 0,
    logouts: 0,
    accessToken: (did, ttl) => accessToken(did, ttl),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return mock;
}
