/**
 * Privy sign-in by e-mail one-time code, with Privy's own SDK. The SDK is a chunk of its own,
 * loaded only when Privy is configured and the user starts a Privy sign-in. Its tokens stay in
 * its in-memory storage (no localStorage, no cookies): a reload signs out, as with API keys.
 */

/** GET /auth/config → privy */
export interface PrivyConfig {
  app_id: string;
  client_id?: string;
  api_url: string;
}

export interface PrivyClient {
  sendCode(email: string): Promise<void>;
  loginWithCode(email: string, code: string): Promise<void>;
  /** The current access token, refreshed by the SDK when it is about to expire; null when signed out. */
  token(): Promise<string | null>;
  signOut(): Promise<void>;
}

let client: Promise<PrivyClient> | null = null;

/** One SDK instance per page (it holds the session). */
export function privyClient(cfg: PrivyConfig): Promise<PrivyClient> {
  client ??= create(cfg).catch((err) => {
    client = null;
    throw err;
  });
  return client;
}

async function create(cfg: PrivyConfig): Promise<PrivyClient> {
  const { default: Privy, InMemoryCache } = await import('@privy-io/js-sdk-core');
  const options = {
    appId: cfg.app_id,
    ...(cfg.client_id ? { clientId: cfg.client_id } : {}),
    storage: new InMemoryCache(),
    // Not in PrivyOptions' type, but the SDK's client reads it (default https://auth.privy.io).
    baseUrl: cfg.api_url,
    // The SDK would mirror its tokens into cookies for a same-origin server; we keep them in memory.
    sessions: { cookieWriteBehavior: 'never' as const },
  };
  const privy = new Privy(options);
  return {
    async sendCode(email) {
      await privy.auth.email.sendCode(email);
    },
    async loginWithCode(email, code) {
      await privy.auth.email.loginWithCode(email, code);
    },
    token: () => privy.getAccessToken(),
    signOut: () => privy.auth.logout(),
  };
}
