import { newId } from '../lib/ids.js';

/** A hold's arguments, as every layer that takes one (the store, the leases, the fast paths) takes them. */
export type HoldArgs = [
  id: string,
  userId: string,
  keyId: string | null,
  amount: number,
  requestId: string,
  now: number,
  ttlMs: number,
];

/** BillingStore's hold: one conditional statement, false when the available balance cannot cover it. */
export type TakeHold = (...a: HoldArgs) => Promise<boolean>;

/** The storage side of a lease: a lease is one ordinary hold, taken and released as any other. */
export interface LeaseStore {
  hold: TakeHold;
  release(id: string): Promise<void>;
  available(userId: string): Promise<number | null>;
}

export interface LeaseSettings {
  /** A user's holds on this process, this one included, from which on a lease is taken. */
  minInFlight: number;
  /** A lease covers this many holds of the size of the one that takes it. */
  holdsPerLease: number;
  /** A lease takes at most this share of the user's available balance (1/n). */
  shareOfAvailable: number;
  /** New holds are taken from a lease for this long; its hold expires `ttlMs` (the hold TTL) later. */
  lifeMs: number;
}

/** How long a user refused a lease is not asked again. */
const REFUSED_MS = 1000;

export const DEFAULT_LEASES: LeaseSettings = {
  minInFlight: 4,
  holdsPerLease: 64,
  shareOfAvailable: 4,
  lifeMs: 10_000,
};

interface Lease {
  id: string;
  userId: string;
  size: number;
  /** What new holds may still take: size − holds outstanding − what was charged. */
  remaining: number;
  /** Holds of the lease whose request has not settled or released yet. */
  outstanding: number;
  usableUntil: number;
  retired: boolean;
  /** The release of the lease's hold, once given back. */
  back: Promise<void> | null;
}

/**
 * Hold leases: a user with several requests in flight on this process takes ONE hold (the lease)
 * for many requests, and each request's hold is then taken from it in memory, with no statement.
 *
 * Why: a hold is a write before the upstream call. On PostgreSQL it is a round trip that waits for
 * the user's batch at the server (postgres-fast.ts: one batch per user at a time), on the way to
 * the first byte of every request; on SQLite, two statements and a row of `holds` inserted and
 * deleted per request. With a lease the hold is a subtraction, and the settle has no hold to delete.
 *
 * Exact all the same:
 * - A lease is an ordinary hold (a row of `holds`, counted in `held_micros`), taken with the same
 *   conditional statement: other processes never see its money as available.
 * - A request's hold comes out of the lease's `remaining`; the request's settle charges its cost to
 *   the balance (as any settle) and gives the lease back `hold − cost`. So what a lease's requests
 *   have charged plus what its requests in flight hold never exceeds the lease: no request is
 *   served that its hold did not cover, exactly as with a hold per request.
 * - The lease's hold is released (`held_micros` back down by its size) only once every request of
 *   it has settled or released, so a charge never lands after the money that covered it was freed.
 *   A lease is given back as soon as none of its user's requests is in flight on this process, and
 *   retired (given back once drained) when it runs low or after `lifeMs`. A process that dies leaves
 *   its lease's hold to expire like any other (`lifeMs` + the hold TTL) and the sweeper releases it.
 * - A lease takes at most 1/`shareOfAvailable` of what the user has available and covers at least 8
 *   holds, so other processes keep most of the balance, and a low one (less than 32 holds' worth at
 *   the default share) keeps the hold per request. A credit or debit through `BillingStore.post`
 *   retires the user's lease: no new hold comes out of money a refund took.
 *
 * A lease shows in `held_micros` while it lives (one lease's size, at most a quarter of the
 * available balance); a user's `available` is lower by what the lease has not handed out.
 */
export class HoldLeases {
  private readonly current = new Map<string, Lease>();
  private readonly acquiring = new Map<string, Promise<Lease | null>>();
  /** Holds taken from a lease: hold id → lease and amount. */
  private readonly local = new Map<string, { lease: Lease; amount: number }>();
  /** Holds taken in storage (one statement each): hold id → user. */
  private readonly direct = new Map<string, string>();
  /** Holds outstanding on this process per user (both kinds). */
  private readonly inFlight = new Map<string, number>();
  /** Users refused a lease (too little available) until then: meanwhile no lease is asked for. */
  private readonly refused = new Map<string, number>();
  /** Lease holds being released, per user. */
  private readonly givingBack = new Map<string, Promise<void>>();
  /** Leases taken and given back, holds taken from leases (for tests and diagnostics). */
  readonly stats = { leases: 0, returned: 0, leased: 0 };

  constructor(
    private readonly store: LeaseStore,
    private readonly settings: LeaseSettings = DEFAULT_LEASES,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  readonly hold: TakeHold = async (id, userId, keyId, amount, requestId, now, ttlMs) => {
    const l = this.current.get(userId);
    if (l && this.take(l, id, amount, now)) return true;
    // This request counts as in flight from here (holds of requests that arrived together are
    // answered together: PostgreSQL's batch).
    this.count(userId, 1);
    let held = false;
    try {
      if ((this.inFlight.get(userId) ?? 0) >= this.settings.minInFlight && this.mayLease(userId, now)) {
        const got = await this.lease(userId, amount, now, ttlMs);
        if (got && this.take(got, id, amount, Date.now())) return true;
      }
      held = await this.store.hold(id, userId, keyId, amount, requestId, now, ttlMs);
    } finally {
      // Taken from a lease (counted there), or refused: no longer this request's own count. When that
      // was the user's last, a lease taken meanwhile that nothing uses is not kept (see count).
      if (!held) this.count(userId, -1);
    }
    if (held) this.direct.set(id, userId);
    return held;
  };

  /**
   * A settle begins. True for a hold taken from a lease: the settle then has no hold of its own to
   * release, and `settled` follows it. A hold in storage is forgotten here.
   */
  settling(holdId: string | null): boolean {
    if (holdId === null) return false;
    if (this.local.has(holdId)) return true;
    this.forgetDirect(holdId);
    return false;
  }

  /**
   * The settle of a leased hold ended (committed, or failed: then its cost counts as charged, which
   * only leaves the lease less to hand out). The lease's release when it was its last request.
   */
  settled(holdId: string, cost: number): Promise<void> | null {
    const h = this.local.get(holdId);
    if (!h) return null;
    this.local.delete(holdId);
    h.lease.remaining += h.amount - cost;
    return this.finish(h.lease);
  }

  /**
   * Drop a hold without a charge: a leased one writes nothing (its lease is released if it was its
   * last request); one in storage is released there.
   */
  async release(holdId: string): Promise<void> {
    const h = this.local.get(holdId);
    if (h) {
      this.local.delete(holdId);
      h.lease.remaining += h.amount;
      const back = this.finish(h.lease);
      if (back) await back;
      return;
    }
    const user = this.forgetDirect(holdId);
    await this.store.release(holdId);
    const back = user === undefined ? undefined : this.givingBackFor(user);
    if (back) await back;
  }

  /** A hold in storage is done with: it no longer counts as its user's. Its user, when it was one. */
  private forgetDirect(holdId: string): string | undefined {
    const user = this.direct.get(holdId);
    if (user !== undefined) {
      this.direct.delete(holdId);
      this.count(user, -1);
    }
    return user;
  }

  /**
   * The user's balance changed otherwise (a credit, a debit, a refund): new holds no longer come out
   * of the lease taken before it; the next lease is sized from the new balance.
   */
  balanceChanged(userId: string): void {
    this.drop(userId);
  }

  private drop(userId: string): void {
    const l = this.current.get(userId);
    if (l) this.retire(l);
  }

  /** Give every lease back (after the pipeline drained: none has a request left). */
  async close(): Promise<void> {
    for (const l of [...this.current.values()]) this.retire(l);
    await Promise.all([...this.givingBack.values()]);
  }

  private take(l: Lease, id: string, amount: number, now: number): boolean {
    // A hold too large for the lease is taken in storage, and leaves the lease as it is.
    if (amount * 8 > l.size) return false;
    if (l.retired || now >= l.usableUntil || l.remaining < amount) {
      this.retire(l);
      return false;
    }
    l.remaining -= amount;
    l.outstanding++;
    this.local.set(id, { lease: l, amount });
    this.count(l.userId, 1);
    this.stats.leased++;
    return true;
  }

  private mayLease(userId: string, now: number): boolean {
    const until = this.refused.get(userId);
    if (until === undefined) return true;
    if (now < until) return false;
    this.refused.delete(userId);
    return true;
  }

  private lease(userId: string, amount: number, now: number, ttlMs: number): Promise<Lease | null> {
    let p = this.acquiring.get(userId);
    if (!p) {
      p = this.acquire(userId, amount, now, ttlMs).finally(() => this.acquiring.delete(userId));
      this.acquiring.set(userId, p);
    }
    return p;
  }

  private async acquire(userId: string, amount: number, now: number, ttlMs: number): Promise<Lease | null> {
    const { holdsPerLease, shareOfAvailable, lifeMs } = this.settings;
    const available = await this.store.available(userId);
    const size = Math.min(amount * holdsPerLease, Math.floor((available ?? 0) / shareOfAvailable));
    const id = newId('lease');
    if (size < amount * 8 || !(await this.store.hold(id, userId, null, size, id, now, lifeMs + ttlMs))) {
      // A balance this low holds per request: asking again on every request would add a read to each.
      if (this.refused.size > 10_000) this.refused.clear();
      this.refused.set(userId, now + REFUSED_MS);
      return null;
    }
    const l: Lease = {
      id,
      userId,
      size,
      remaining: size,
      outstanding: 0,
      usableUntil: now + lifeMs,
      retired: false,
      back: null,
    };
    this.stats.leases++;
    const old = this.current.get(userId);
    if (old) this.retire(old);
    this.current.set(userId, l);
    return l;
  }

  /** One request of the lease is done: give the lease back when none is left and it is done with. */
  private finish(l: Lease): Promise<void> | null {
    l.outstanding--;
    this.count(l.userId, -1);
    if (l.outstanding > 0) return null;
    // Retired (it gives back now), or no request of the user is left in flight here: not kept for later.
    if (l.retired || !this.inFlight.has(l.userId)) this.retire(l);
    return l.back;
  }

  /** No new holds from this lease; its hold is released now, or when its last request is done. */
  private retire(l: Lease): void {
    if (this.current.get(l.userId) === l) this.current.delete(l.userId);
    l.retired = true;
    if (l.outstanding === 0 && !l.back) l.back = this.giveBack(l);
  }

  private giveBack(l: Lease): Promise<void> {
    const before = this.givingBack.get(l.userId);
    const p: Promise<void> = this.store
      .release(l.id)
      .catch((err: unknown) => this.onError(err)) // its hold expires, and the sweeper releases it
      .then(() => before)
      .finally(() => {
        if (this.givingBack.get(l.userId) === p) this.givingBack.delete(l.userId);
      });
    this.givingBack.set(l.userId, p);
    this.stats.returned++;
    return p;
  }

  /** The release of the user's last lease, while it runs (a settle waits for it: see BillingStore). */
  givingBackFor(userId: string): Promise<void> | undefined {
    return this.givingBack.get(userId);
  }

  private count(userId: string, d: number): void {
    const n = (this.inFlight.get(userId) ?? 0) + d;
    if (n > 0) {
      this.inFlight.set(userId, n);
      return;
    }
    this.inFlight.delete(userId);
    // The user's last request here was not the lease's: a drained lease is not kept either.
    this.drop(userId);
  }
}
