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
 *
 * Rewinding the WAL. SQLite writes the WAL from its start again only when a write transaction
 * begins after a checkpoint has copied every frame in it. Under sustained load the connection
 * commits again (and begins its next transaction) while the worker's checkpoint is still copying,
 * so that never happens, and the WAL grew for as long as the load lasted: 17 MB a second at 4,800
 * requests/s, 107 MB after six seconds, every new block zeroed by the kernel as the file grew (3%
 * of the gateway's CPU in `perf`). So when the worker reports a checkpoint that copied everything
 * it saw of a WAL of `rewindAtFrames` frames or more, the connection itself checkpoints once,
 * between two of its transactions: it copies only what was committed since (a few milliseconds'
 * worth) and its next transaction starts the WAL again from its beginning. The group commit calls
 * `betweenTransactions` after each of its COMMITs (under load its next transaction may begin before
 * any timer or immediate of ours runs); without writes of its own, an immediate finds the gap.
 * Measured (bench harness, 4,800 requests/s, 1 KiB pages): the WAL stays at 17 MB instead of
 * growing 17 MB a second; the connection's checkpoint takes ~2.5 ms once a second (it syncs both
 * files); over 20 s of load the gateway spent 2.5-5.5% less CPU per request.
 */
export class Checkpointer {
  private worker: Worker | null = null;
  private waiting: NodeJS.Timeout | null = null;

  /** Checkpoints the connection ran itself to rewind the WAL (for tests and diagnostics). */
  rewinds = 0;
  private rewindWanted = false;
  private lookingForGap = false;

  constructor(
    private readonly sqlite: SQLite.Database,
    private readonly path: string,
    private readonly intervalMs = 1000,
    startAtWalBytes = 1000 * (sqlite.pragma('page_size', { simple: true }) as number),
    private readonly rewindAtFrames = 1000,
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
    worker.on('message', (r: CheckpointResult) => this.checkpointed(r));
  }

  /** The worker's checkpoint copied every frame of a long WAL: rewind it (see the class comment). */
  private checkpointed(r: CheckpointResult): void {
    if (r.busy !== 0 || r.log < this.rewindAtFrames || r.checkpointed !== r.log) return;
    this.rewindWanted = true;
    if (!this.lookingForGap) {
      this.lookingForGap = true;
      this.rewindSoon(0);
    }
  }

  /** Look for a moment without a transaction for a few turns (when the group commit writes, it calls us). */
  private rewindSoon(tries: number): void {
    setImmediate(() => {
      if (this.rewindWanted && !this.betweenTransactions() && tries < 100) this.rewindSoon(tries + 1);
      else this.lookingForGap = false;
    });
  }

  /**
   * When a rewind is wanted and no transaction is open on the connection (a checkpoint cannot run
   * inside one), checkpoint now; true when it ran. Cheap otherwise: the group commit calls it after
   * every COMMIT.
   */
  betweenTransactions(): boolean {
    if (!this.rewindWanted || this.sqlite.inTransaction) return false;
    this.rewindWanted = false;
    if (!this.worker || !this.sqlite.open) return false;
    try {
      this.sqlite.pragma('wal_checkpoint(PASSIVE)');
      this.rewinds++;
      return true;
    } catch {
      return false; // busy (another process): the worker's next report asks again
    }
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

/** A row of `PRAGMA wal_checkpoint`: frames in the WAL, frames copied into the database file. */
interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
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
  try { parentPort.postMessage(checkpoint.get()); } catch { /* busy: the next turn */ }
}, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m !== 'close') return;
  clearInterval(timer);
  try { checkpoint.run(); } catch {}
  db.close();
  process.exit(0);
});
`;
