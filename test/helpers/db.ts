import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface TestDatabase {
  name: 'sqlite' | 'postgres';
  /** DATABASE_URL value for the gateway. */
  url: string;
  dataDir: string;
  drop(): Promise<void>;
}

export type DatabaseKind = 'sqlite' | 'postgres';

/** Every storage test runs on SQLite, and on PostgreSQL too when TEST_DATABASE_URL is set (CI). */
export const DATABASES: DatabaseKind[] = process.env.TEST_DATABASE_URL ? ['sqlite', 'postgres'] : ['sqlite'];

/** A fresh, empty database: a new SQLite file, or a new PostgreSQL database created for this test. */
export async function createTestDatabase(kind: DatabaseKind): Promise<TestDatabase> {
  const dataDir = mkdtempSync(join(tmpdir(), 'gwz-'));
  if (kind === 'sqlite') {
    return {
      name: 'sqlite',
      url: `sqlite:${join(dataDir, 'gatewayz.db')}`,
      dataDir,
      async drop() {
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
  const admin = process.env.TEST_DATABASE_URL!;
  const dbName = `gwz_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`CREATE DATABASE ${dbName}`);
  await client.end();
  const u = new URL(admin);
  u.pathname = `/${dbName}`;
  return {
    name: 'postgres',
    url: u.toString(),
    dataDir,
    async drop() {
      rmSync(dataDir, { recursive: true, force: true });
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await c.end();
    },
  };
}
