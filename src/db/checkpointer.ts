import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type SQLite from 'better-sqlite3';

/**
 * SQLite checkpoints off the event loop. In WAL mode SQLite copies the log back into the database
 * file (and syncs it) inside whichever COMMIT crosses `wal_autocheckpoint` pages: a few milliseconds
 * that one request in a few dozen pays, on the event loop. Here the main connection never
 * checkpoints; a worker thread with a connection of its own runs a PASSIVE checkpoint (it never blocks
 * writers or readers) every `intervalMs`. Should the worker fail, the main connection checkpoints
 * itself again, as SQLite does by default.
 */
export class Checkpointer {
  private worker: Worker | null;

  constructor(
    private readonly sqlite: SQLite.Database,
    path: string,
    intervalMs = 250,
  ) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER, {
      eval: true,
      workerData: { driver, path, intervalMs },
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 0.5 },
    });
    this.worker.unref();
    sqlite.pragma('wal_autocheckpoint = 0');
    const fallBack = () => {
      if (!this.worker) return;
      this.worker = null;
      this.restore();
    };
    this.worker.on('error', fallBack);
    this.worker.on('exit', fallBack);
  }

  /** Stop the worker (its last checkpoint finishes first) and hand checkpoints back to the connection. */
  async close(): Promise<void> {
    const w = this.worker;
    if (!w) return;
    this.worker = null;
    const exited = new Promise((r) => w.once('exit', r));
    w.postMessage('close');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 2000).unref())]);
    await w.terminate();
    this.restore();
  }

  private restore(): void {
    try {
      if (this.sqlite.open) this.sqlite.pragma('wal_autocheckpoint = 1000');
    } catch {
      /* closing */
    }
  }
}

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 5000');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
const timer = setInterval(() => {
  try { checkpoint.run(); } catch { /* busy: the next turn */ }
}, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m !== 'close') return;
  clearInterval(timer);
  try { checkpoint.run(); } catch {}
  db.close();
  process.exit(0);
});
`;
