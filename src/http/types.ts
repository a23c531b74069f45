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
    /** Error body shape of the endpoint family. */
    errorFormat?: 'openai' | 'anthropic';
  }
}
