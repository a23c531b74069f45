import { statSync } from 'node:fs';
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
 *
 * Once a second, not more often: each checkpoint syncs the WAL and the database file, and a COMMIT
 * that meets one on the event loop waits for it (with the gateway on one core, the worker shares
 * it). Measured in the bench's sequential phase, one request per COMMIT: every 250 ms, COMMIT mean
 * 327/361 µs and p90 701/763 µs; every second, 186/177 and 297/372 (no checkpoint at all: 142/156
 * and 229/217). Under load the WAL then grows to a second's worth of writes before it is copied
 * back (each page once, however often it was written).
 *
 * The worker (a thread with its own V8 heap: ~13 MiB of resident memory) starts only once the WAL
 * first reaches `startAtWalBytes`: by default 1,000 pages, where SQLite itself would first have
 * checkpointed. Until then nothing needs copying back, and a gateway that writes little never pays
 * for the thread. Meanwhile the WAL's size is looked at (one `stat`) every `intervalMs`.
 */
export class Checkpointer {
  private worker: Worker | null = null;
  private waiting: NodeJS.Timeout | null = null;

  constructor(
    private readonly sqlite: SQLite.Database,
    private readonly path: string,
    private readonly intervalMs = 1000,
    startAtWalBytes = 1000 * (sqlite.pragma('page_size', { simple: true }) as number),
  ) {
    sqlite.pragma('wal_autocheckpoint = 0');
    if (startAtWalBytes <= 0) {
      this.start();
      return;
    }
    this.waiting = setInterval(() => {
      if (walBytes(path) < startAtWalBytes) return;
      this.stopWaiting();
      this.start();
    }, intervalMs);
    this.waiting.unref();
  }

  /** Whether the worker thread is running (false before the WAL first reaches the start size). */
  get running(): boolean {
    return this.worker !== null;
  }

  private start(): void {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(WORKER, {
      eval: true,
      workerData: { driver, path: this.path, intervalMs: this.intervalMs },
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 0.5 },
    });
    this.worker = worker;
    worker.unref();
    const fallBack = () => {
      if (this.worker !== worker) return;
      this.worker = null;
      this.restore();
    };
    worker.on('error', fallBack);
    worker.on('exit', fallBack);
  }

  private stopWaiting(): void {
    if (this.waiting) clearInterval(this.waiting);
    this.waiting = null;
  }

  /** Stop the worker (its last checkpoint finishes first) and hand checkpoints back to the connection. */
  async close(): Promise<void> {
    if (this.waiting) {
      this.stopWaiting();
      this.restore();
    }
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

function walBytes(path: string): number {
  try {
    return statSync(`${path}-wal`).size;
  } catch {
    return 0;
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
