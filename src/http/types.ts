import type { Principal } from '../accounts/principal.js';

export type AuthMode = 'public' | 'user' | 'admin';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    startedAt: number;
  }
  interface FastifyContextConfig {
    /** Who may call the route: nobody needs a key, any valid key, or an admin. Every route declares it. */
    auth?: AuthMode;
    /** Permission an admin route needs (`resource:action`). */
    permission?: string;
    /**
     * The route bills through the inference pipeline: API keys only. A sign-in session (a Privy
     * access token) is refused with 401, so a browser session never spends credits directly.
     */
    inference?: boolean;
    /** Error body shape of the endpoint family. */
    errorFormat?: 'openai' | 'anthropic';
  }
}
