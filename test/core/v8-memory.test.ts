import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });

/** The process entry (src/server.ts) keeps V8's young generation small through start (src/lib/v8-memory.ts). */
describe('memory after start', () => {
  let dir: string;
  let proc: ChildProcess;
  let url: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gwz-mem-'));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    proc = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: new URL('../..', import.meta.url),
      env: {
        ...process.env,
        NODE_ENV: 'production',
        HOST: '127.0.0.1',
        PORT: String(port),
        DATABASE_URL: `sqlite:${join(dir, 'gatewayz.db')}`,
        DATA_DIR: dir,
        ADMIN_API_KEY: 'admin-test-key-0123456789abcdef',
        GATEWAY_SECRET: 'test-secret-0123456789abcdef0123456789',
        LOG_LEVEL: 'silent',
        CATALOG_SYNC_INTERVAL_MS: '0',
        GATEWAYZ_CONFIG: '',
      },
      stdio: 'ignore',
    });
    const until = Date.now() + 30_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`the gateway exited with ${proc.exitCode}`);
      if (Date.now() > until) throw new Error('the gateway did not start in 30 s');
      try {
        if ((await fetch(`${url}/ping`)).ok) break;
      } catch {}
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 60_000);
  afterAll(async () => {
    if (proc && proc.exitCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts with a young generation of a few MiB, not the 32 MiB V8 grows it to by default', async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('nodejs_heap_space_size_total_bytes{space="new"'));
    expect(line).toBeDefined();
    const bytes = Number(line!.split(' ').pop());
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThanOrEqual(8 * 1024 * 1024);
  });
});
