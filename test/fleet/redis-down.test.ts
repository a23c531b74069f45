import { describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/db.js';
import { startGateway } from '../helpers/gateway.js';

describe('Redis unreachable', () => {
  it('the gateway still starts, runs its jobs on database leases, and shuts down promptly', async () => {
    const db = await createTestDatabase('sqlite');
    const t0 = Date.now();
    const g = await startGateway(db, { REDIS_URL: 'redis://127.0.0.1:1', HOLD_SWEEP_INTERVAL_MS: '100' });
    try {
      expect(Date.now() - t0).toBeLessThan(15_000);
      expect((await fetch(`${g.url}/ping`)).status).toBe(200);
      // The hold sweeper took its lease in the database instead.
      const until = Date.now() + 3000;
      let row: { owner: string } | undefined;
      while (!row && Date.now() < until) {
        row = await g.gw.db.db
          .selectFrom('fleet_leases')
          .select('owner')
          .where('name', '=', 'hold-sweeper')
          .executeTakeFirst();
        if (!row) await new Promise((r) => setTimeout(r, 50));
      }
      expect(row?.owner).toBe(g.gw.config.fleet.instanceId);
    } finally {
      const c0 = Date.now();
      await g.close();
      expect(Date.now() - c0).toBeLessThan(5000);
      await db.drop();
    }
  }, 30_000);
});
