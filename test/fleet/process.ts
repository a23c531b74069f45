import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { TestDatabase } from '../helpers/db.js';
import { ADMIN_KEY } from '../helpers/gateway.js';

export interface GatewayProcess {
  url: string;
  port: number;
  proc: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: string[];
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * A real gateway process (`node --import tsx src/server.ts`, one process so signals reach it
 * directly) with the env a production instance gets.
 */
export async function spawnGateway(
  db: TestDatabase,
  env: Record<string, string>,
  port?: number,
): Promise<GatewayProcess> {
  const p = port ?? (await freePort());
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: process.cwd(),
    env: {
      PATH: process.env.PATH ?? '',
      DATABASE_URL: db.url,
      DATA_DIR: db.dataDir,
      ADMIN_API_KEY: ADMIN_KEY,
      GATEWAY_SECRET: 'test-secret-0123456789abcdef0123456789',
      LOG_LEVEL: 'warn',
      CATALOG_SYNC_INTERVAL_MS: '0',
      HOST: '127.0.0.1',
      PORT: String(p),
      GATEWAYZ_CONFIG: '',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  proc.stdout!.on('data', (d) => output.push(String(d)));
  proc.stderr!.on('data', (d) => output.push(String(d)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const url = `http://127.0.0.1:${p}`;
  const t0 = Date.now();
  let dead = false;
  void exited.then(() => (dead = true));
  for (;;) {
    if (dead) throw new Error(`gateway process exited during start:\n${output.join('')}`);
    try {
      const r = await fetch(`${url}/ping`);
      if (r.ok) break;
    } catch {}
    if (Date.now() - t0 > 30_000) {
      proc.kill('SIGKILL');
      throw new Error(`gateway process did not start:\n${output.join('')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, port: p, proc, exited, output };
}

export async function adminCreateUser(
  url: string,
  credits: number,
): Promise<{ userId: string; apiKey: string; keyId: string }> {
  const res = await fetch(`${url}/admin/create`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      email: `p${Date.now()}${Math.random().toString(36).slice(2, 8)}@example.com`,
      credits,
    }),
  });
  if (res.status !== 200) throw new Error(`create user: ${res.status} ${await res.text()}`);
  const j = (await res.json()) as { user_id: string; api_key: string; key_id: string };
  return { userId: j.user_id, apiKey: j.api_key, keyId: j.key_id };
}
