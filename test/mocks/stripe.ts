import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';

/** A checkout session as the local Stripe server keeps it. */
export interface MockSession {
  id: string;
  object: 'checkout.session';
  mode: 'payment' | 'subscription';
  url: string;
  amount_total: number;
  currency: string;
  client_reference_id: string | null;
  customer_email: string | null;
  metadata: Record<string, string>;
  payment_status: 'unpaid' | 'paid';
  status: 'open' | 'complete' | 'expired';
  payment_intent: string | null;
  subscription: string | null;
  invoice: string | null;
}

export interface MockStripe {
  url: string;
  secretKey: string;
  webhookSecret: string;
  sessions: Map<string, MockSession>;
  /** Requests received: method, path, parsed form body, headers. */
  calls: Array<{
    method: string;
    path: string;
    body: any;
    idempotencyKey: string | undefined;
    auth: string | undefined;
  }>;
  /** Respond to the next checkout-session create with this status. */
  failNext: number[];
  /** A completed-session event for a session this server created (what Stripe would send). */
  completedEvent(sessionId: string, over?: Partial<MockSession>): Stripe.Event;
  event(type: string, object: Record<string, unknown>): Stripe.Event;
  /** Signature header the real SDK computes for the payload. */
  sign(payload: string, secret?: string): string;
  close(): Promise<void>;
}

const rid = (p: string) => `${p}_${randomBytes(10).toString('hex')}`;

/** Stripe's form encoding (`a[b][0][c]=1`) → nested object. */
export function parseForm(text: string): any {
  const out: any = {};
  for (const [k, v] of new URLSearchParams(text)) {
    const path = k.replace(/\]/g, '').split('[');
    let cur = out;
    path.forEach((seg, i) => {
      const last = i === path.length - 1;
      const nextIsIndex = !last && /^\d+$/.test(path[i + 1]!);
      if (last) cur[seg] = v;
      else cur = cur[seg] ??= nextIsIndex ? [] : {};
    });
  }
  return out;
}

const read = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let s = '';
    req.on('data', (c) => (s += c));
    req.on('end', () => resolve(s));
  });

/** A real HTTP server speaking enough of Stripe's API (checkout sessions) for the SDK, on 127.0.0.1. */
export async function startMockStripe(): Promise<MockStripe> {
  const secretKey = `sk_test_${randomBytes(12).toString('hex')}`;
  const webhookSecret = `whsec_${randomBytes(16).toString('hex')}`;
  const sessions = new Map<string, MockSession>();
  const calls: MockStripe['calls'] = [];
  const failNext: number[] = [];
  let base = '';
  const server: Server = createServer(async (req, res) => {
    const text = await read(req);
    const body = req.headers['content-type']?.includes('form') ? parseForm(text) : text;
    const path = (req.url ?? '').split('?')[0]!;
    const idem = req.headers['idempotency-key'];
    calls.push({
      method: req.method ?? '',
      path,
      body,
      idempotencyKey: typeof idem === 'string' ? idem : undefined,
      auth: req.headers.authorization,
    });
    const send = (status: number, obj: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'request-id': rid('req') });
      res.end(JSON.stringify(obj));
    };
    if (req.headers.authorization !== `Bearer ${secretKey}`)
      return send(401, { error: { type: 'invalid_request_error', message: 'Invalid API Key provided' } });
    if (req.method === 'POST' && path === '/v1/checkout/sessions') {
      const fail = failNext.shift();
      if (fail) return send(fail, { error: { type: 'api_error', message: 'mock failure' } });
      const li = body.line_items?.[0];
      const amount = Number(li?.price_data?.unit_amount ?? 0) * Number(li?.quantity ?? 1);
      const id = rid('cs_test');
      const s: MockSession = {
        id,
        object: 'checkout.session',
        mode: body.mode,
        url: `${base}/pay/${id}`,
        amount_total: amount,
        currency: li?.price_data?.currency ?? 'usd',
        client_reference_id: body.client_reference_id ?? null,
        customer_email: body.customer_email ?? null,
        metadata: body.metadata ?? {},
        payment_status: 'unpaid',
        status: 'open',
        payment_intent: null,
        subscription: null,
        invoice: null,
      };
      sessions.set(id, s);
      return send(200, s);
    }
    const m = /^\/v1\/checkout\/sessions\/([^/]+)$/.exec(path);
    if (req.method === 'GET' && m) {
      const s = sessions.get(m[1]!);
      return s
        ? send(200, s)
        : send(404, { error: { type: 'invalid_request_error', message: 'No such session' } });
    }
    send(404, {
      error: { type: 'invalid_request_error', message: `Unrecognized request URL (${req.method}: ${path})` },
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const event = (type: string, object: Record<string, unknown>): Stripe.Event =>
    ({
      id: rid('evt'),
      object: 'event',
      api_version: '2025-01-01',
      created: Math.floor(Date.now() / 1000),
      type,
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      data: { object },
    }) as unknown as Stripe.Event;
  return {
    url: base,
    secretKey,
    webhookSecret,
    sessions,
    calls,
    failNext,
    event,
    completedEvent(sessionId, over = {}) {
      const s = sessions.get(sessionId);
      if (!s) throw new Error(`no session ${sessionId}`);
      const paid: MockSession = {
        ...s,
        payment_status: 'paid',
        status: 'complete',
        payment_intent: s.mode === 'payment' ? rid('pi') : null,
        subscription: s.mode === 'subscription' ? rid('sub') : null,
        invoice: s.mode === 'subscription' ? rid('in') : null,
        ...over,
      };
      sessions.set(sessionId, paid);
      return event('checkout.session.completed', paid as unknown as Record<string, unknown>);
    },
    sign(payload, secret = webhookSecret) {
      return Stripe.webhooks.generateTestHeaderString({ payload, secret });
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
