import type { AddressInfo } from 'node:net';
import { type BuildOptions, buildGateway, type Gateway } from '../../src/app.js';
import { loadConfig } from '../../src/config/config.js';
import type { TestDatabase } from './db.js';

export const ADMIN_KEY = 'admin-test-key-0123456789abcdef';

export interface RunningGateway {
  gw: Gateway;
  url: string;
  /** Base URL for OpenAI clients. */
  v1: string;
  db: TestDatabase;
  env: Record<string, string>;
  admin(path: string, body: unknown, method?: string): Promise<Response>;
  /** A new user with `credits` USD and its primary key. */
  createUser(
    credits: number,
    extra?: Record<string, unknown>,
  ): Promise<{ userId: string; apiKey: string; keyId: string }>;
  close(): Promise<void>;
}

/** A real gateway on a real port over a real database, configured by env like production. */
export async function startGateway(
  db: TestDatabase,
  env: Record<string, string> = {},
  /** Build options (e.g. an injectable `clock` for breakers and the cache). */
  options: BuildOptions = {},
): Promise<RunningGateway> {
  const fullEnv: Record<string, string> = {
    DATABASE_URL: db.url,
    DATA_DIR: db.dataDir,
    ADMIN_API_KEY: ADMIN_KEY,
    GATEWAY_SECRET: 'test-secret-0123456789abcdef0123456789',
    LOG_LEVEL: 'silent',
    CATALOG_SYNC_INTERVAL_MS: '0',
    HOST: '127.0.0.1',
    PORT: '0',
    GATEWAYZ_CONFIG: '',
    ...env,
  };
  const config = loadConfig(fullEnv);
  const gw = await buildGateway(config, options);
  await gw.app.listen({ port: 0, host: '127.0.0.1' });
  const port = (gw.app.server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  const admin = (path: string, body: unknown, method = 'POST') =>
    fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  let n = 0;
  return {
    gw,
    url,
    v1: `${url}/v1`,
    db,
    env: fullEnv,
    admin,
    async createUser(credits, extra = {}) {
      const res = await admin('/admin/create', {
        email: `u${Date.now()}${n++}@example.com`,
        credits,
        ...extra,
      });
      if (res.status !== 200) throw new Error(`create user: ${res.status} ${await res.text()}`);
      const j = (await res.json()) as { user_id: string; api_key: string; key_id: string };
      return { userId: j.user_id, apiKey: j.api_key, keyId: j.key_id };
    },
    close: () => gw.close(),
  };
}
