import type { Redis } from 'ioredis';
import { newRedis } from '../lib/optional.js';

export type BusHandler = (message: string) => void;

/**
 * Cross-instance notifications (cache invalidation). Every message is also delivered to this
 * process at once, so a change is visible locally without a round trip.
 */
export interface Bus {
  readonly kind: 'local' | 'redis';
  publish(channel: string, message: string): Promise<void>;
  subscribe(channel: string, handler: BusHandler): void;
  close(): Promise<void>;
}

class Handlers {
  private readonly byChannel = new Map<string, BusHandler[]>();
  add(channel: string, h: BusHandler): boolean {
    const list = this.byChannel.get(channel);
    if (list) list.push(h);
    else this.byChannel.set(channel, [h]);
    return !list;
  }
  channels(): string[] {
    return [...this.byChannel.keys()];
  }
  deliver(channel: string, message: string, onError: (e: unknown) => void): void {
    for (const h of this.byChannel.get(channel) ?? []) {
      try {
        h(message);
      } catch (e) {
        onError(e);
      }
    }
  }
}

/** One process (embedded mode, or no Redis): delivery stays in-process. */
export class LocalBus implements Bus {
  readonly kind = 'local' as const;
  private readonly handlers = new Handlers();
  constructor(private readonly onError: (e: unknown) => void = () => {}) {}
  async publish(channel: string, message: string): Promise<void> {
    this.handlers.deliver(channel, message, this.onError);
  }
  subscribe(channel: string, handler: BusHandler): void {
    this.handlers.add(channel, handler);
  }
  async close(): Promise<void> {}
}

interface Envelope {
  /** Sender, so a process does not apply its own message twice. */
  from: string;
  m: string;
}

/**
 * Redis pub/sub. Publishing never throws: a lost notification only delays invalidation until the
 * cache's TTL (KEY_CACHE_TTL_MS), it never loses money.
 */
export class RedisBus implements Bus {
  readonly kind = 'redis' as const;
  private readonly handlers = new Handlers();
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly pending: Promise<unknown>[] = [];

  constructor(
    url: string,
    private readonly prefix: string,
    private readonly instanceId: string,
    private readonly onError: (e: unknown) => void = () => {},
  ) {
    const opts = { lazyConnect: false, maxRetriesPerRequest: 2, enableOfflineQueue: true };
    this.pub = newRedis(url, opts);
    // ioredis's own resubscription leaves its promise unobserved (an unhandled rejection when the
    // connection drops again at once): resubscribe ourselves on every reconnect, with a catch.
    this.sub = newRedis(url, { ...opts, autoResubscribe: false });
    let connectedOnce = false;
    this.sub.on('ready', () => {
      if (connectedOnce) {
        for (const ch of this.handlers.channels()) this.sub.subscribe(this.prefix + ch).catch(this.onError);
      }
      connectedOnce = true;
    });
    this.pub.on('error', onError);
    this.sub.on('error', onError);
    this.sub.on('message', (channel: string, raw: string) => {
      let env: Envelope;
      try {
        env = JSON.parse(raw) as Envelope;
      } catch {
        return;
      }
      if (env.from === this.instanceId) return;
      this.handlers.deliver(channel.slice(this.prefix.length), env.m, this.onError);
    });
  }

  /** Resolves when both connections are up and subscriptions are in place. */
  async ready(): Promise<void> {
    const up = (r: Redis) =>
      r.status === 'ready' ? Promise.resolve() : new Promise<void>((res) => r.once('ready', () => res()));
    await Promise.all([up(this.pub), up(this.sub), ...this.pending]);
  }

  async publish(channel: string, message: string): Promise<void> {
    this.handlers.deliver(channel, message, this.onError);
    const env: Envelope = { from: this.instanceId, m: message };
    try {
      await this.pub.publish(this.prefix + channel, JSON.stringify(env));
    } catch (e) {
      this.onError(e);
    }
  }

  subscribe(channel: string, handler: BusHandler): void {
    if (this.handlers.add(channel, handler)) {
      this.pending.push(this.sub.subscribe(this.prefix + channel).catch(this.onError));
    }
  }

  async close(): Promise<void> {
    await Promise.all([endRedis(this.pub), endRedis(this.sub)]);
  }
}

/** Quit politely when connected; otherwise just drop the connection (never wait on a Redis that is down). */
export async function endRedis(r: Redis): Promise<void> {
  if (r.status === 'ready') await r.quit().catch(() => r.disconnect());
  else r.disconnect();
}
