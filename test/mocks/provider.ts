// Mock upstream provider HTTP servers (node:http only) for the gateway's test suite.
//
//   const up = await startMockProvider('openrouter', { options: { apiKey: 'sk-or-test' } });
//   up.url            // http://127.0.0.1:PORT/v1
//   up.faults.push({ type: 'status', status: 503 });   // next chat/messages/… request fails
//   up.calls[0].usage // what the upstream billed for the first call
//   await up.close();
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { handleCountTokens, handleMessages } from './anthropic.js';
import { defaultModels, modelsListBody } from './catalog.js';
import { defaultMessage, errorBody, sendError } from './errors.js';
import { type Ctx, destroy, end, gone, head, headerNumber, randomId, readBody, sendJson } from './http.js';
import { handleChat } from './openai-chat.js';
import { handleEmbeddings, handleImages } from './openai-extras.js';
import { handleResponses } from './responses.js';
import type { Fault, MockKind, MockModel, MockOptions, MockProvider, RecordedCall } from './types.js';

export { defaultModels } from './catalog.js';
export type * from './types.js';

type Route = 'models' | 'chat' | 'responses' | 'messages' | 'count_tokens' | 'embeddings' | 'images';

/** Routes that consume queued faults and count towards inFlight. */
const WORK = new Set<Route>(['chat', 'responses', 'messages', 'embeddings', 'images']);

function route(kind: MockKind, method: string, pathname: string): Route | null {
  let p = pathname.replace(/\/+$/, '');
  if (kind === 'openrouter' && p.startsWith('/api/v1/')) p = p.slice(4); // OpenRouter's real base is /api/v1
  if (method === 'GET') return p === '/v1/models' ? 'models' : null;
  if (method !== 'POST') return null;
  const anthropic = kind === 'anthropic';
  switch (p) {
    case '/v1/chat/completions':
      return anthropic ? null : 'chat';
    case '/v1/embeddings':
      return ['openai', 'openrouter', 'portkey', 'chutes'].includes(kind) ? 'embeddings' : null;
    case '/v1/images/generations':
      return ['openai', 'chutes', 'portkey'].includes(kind) ? 'images' : null;
    case '/v1/responses':
      return kind === 'openai' ? 'responses' : null;
    case '/v1/messages':
      return anthropic ? 'messages' : null;
    case '/v1/messages/count_tokens':
      return anthropic ? 'count_tokens' : null;
    default:
      return null;
  }
}

/** Answer with 401/400 when the request lacks the configured credentials; returns true when it did. */
function rejectAuth(ctx: Ctx, apiKey: string): boolean {
  const h = ctx.req.headers;
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
  switch (ctx.kind) {
    case 'anthropic': {
      // x-api-key, or `Authorization: Bearer <key>` (what @anthropic-ai/sdk 1.x sends for an apiKey)
      const key = one(h['x-api-key']) ?? /^Bearer\s+(.+)$/i.exec(one(h.authorization) ?? '')?.[1]?.trim();
      if (!key) sendError(ctx, 401, 'x-api-key header is required');
      else if (key !== apiKey) sendError(ctx, 401, 'invalid x-api-key');
      else if (!one(h['anthropic-version'])) sendError(ctx, 400, 'anthropic-version: header is required');
      else return false;
      return true;
    }
    case 'portkey': {
      const key = one(h['x-portkey-api-key']);
      if (key === apiKey) return false;
      sendError(ctx, 401, key ? 'Invalid API Key' : 'x-portkey-api-key header is required', { code: null });
      return true;
    }
    default: {
      const auth = one(h.authorization) ?? '';
      const key = /^Bearer\s+(.+)$/i.exec(auth)?.[1]?.trim();
      if (key === apiKey) return false;
      if (ctx.kind === 'openrouter')
        sendError(ctx, 401, key ? 'User not found.' : 'No auth credentials found');
      else if (!key) {
        sendError(
          ctx,
          401,
          "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
          { code: null },
        );
      } else sendError(ctx, 401, `Incorrect API key provided: ${key.slice(0, 3)}***${key.slice(-4)}.`);
      return true;
    }
  }
}

function sendStatusFault(ctx: Ctx, f: Extract<Fault, { type: 'status' }>): void {
  const headers: Record<string, string> = f.retryAfter !== undefined ? { 'retry-after': f.retryAfter } : {};
  if (typeof f.body === 'string') {
    head(ctx, f.status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
    end(ctx, f.body);
    return;
  }
  const body = f.body ?? errorBody(ctx.kind, f.status, defaultMessage(f.status), {}, ctx.requestId);
  sendJson({ ...ctx, fault: null }, f.status, body, headers);
}

interface Sleeper {
  res: ServerResponse;
  timer: NodeJS.Timeout;
  done: (ok: boolean) => void;
}

export async function startMockProvider(
  kind: MockKind,
  init: { models?: MockModel[]; options?: MockOptions; port?: number } = {},
): Promise<MockProvider> {
  let defaultFault: Fault | null = null;
  let closed = false;
  const sockets = new Set<Socket>();
  const sleepers = new Set<Sleeper>();
  const cancelSleeps = (match: (s: Sleeper) => boolean) => {
    for (const s of sleepers) {
      if (!match(s)) continue;
      clearTimeout(s.timer);
      sleepers.delete(s);
      s.done(false);
    }
  };

  const provider: MockProvider = {
    kind,
    url: '',
    port: 0,
    calls: [],
    inFlight: 0,
    maxInFlight: 0,
    models: init.models ? [...init.models] : defaultModels(kind),
    faults: [],
    options: { ...init.options },
    setDefaultFault(f) {
      defaultFault = f;
    },
    reset() {
      provider.calls.length = 0;
      provider.faults.length = 0;
      defaultFault = null;
      provider.maxInFlight = provider.inFlight;
    },
    async close() {
      if (closed) return;
      closed = true;
      cancelSleeps(() => true);
      const socketsClosed = [...sockets].map(
        (s) => new Promise<void>((resolve) => (s.closed ? resolve() : s.once('close', () => resolve()))),
      );
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await Promise.all(socketsClosed);
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => setImmediate(resolve)); // let responses emit 'close' (inFlight → 0)
    },
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.on('error', () => {});
    const method = req.method ?? 'GET';
    const pathname = new URL(req.url ?? '/', 'http://mock').pathname;
    const raw = method === 'GET' || method === 'HEAD' ? '' : await readBody(req);
    let body: any;
    let badJson = false;
    if (raw.trim() !== '') {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
        badJson = true;
      }
    }
    const call: RecordedCall = {
      method,
      path: req.url ?? '/',
      headers: { ...req.headers },
      body,
      status: 0,
      stream: !!body && typeof body === 'object' && body.stream === true,
    };
    provider.calls.push(call);

    const r = route(kind, method, pathname);
    const work = r !== null && WORK.has(r);
    const fault = (work ? provider.faults.shift() : undefined) ?? defaultFault ?? null;
    if (fault) call.fault = fault;
    if (work) {
      provider.inFlight++;
      provider.maxInFlight = Math.max(provider.maxInFlight, provider.inFlight);
    }
    let finished = false;
    res.once('close', () => {
      if (finished) return;
      finished = true;
      if (work) provider.inFlight--;
      cancelSleeps((s) => s.res === res);
    });

    const o = provider.options;
    const ctx: Ctx = {
      kind,
      req,
      res,
      call,
      body,
      fault,
      models: provider.models,
      requestId: randomId('req_', 24),
      opts: {
        ...o,
        latencyMs: headerNumber(req, 'x-mock-latency-ms') ?? o.latencyMs ?? 0,
        chunkIntervalMs: headerNumber(req, 'x-mock-chunk-interval-ms') ?? o.chunkIntervalMs ?? 0,
        chunks: headerNumber(req, 'x-mock-chunks') ?? o.chunks ?? 4,
      },
      sleep: (ms) =>
        new Promise<boolean>((resolve) => {
          if (closed || finished || gone(ctx)) return resolve(false);
          const s: Sleeper = {
            res,
            done: resolve,
            timer: setTimeout(() => {
              sleepers.delete(s);
              resolve(!closed && !finished && !gone(ctx));
            }, ms),
          };
          sleepers.add(s);
        }),
    };

    if (fault?.type === 'hang') return; // accept, never answer (until the client or close() ends it)
    if (ctx.opts.latencyMs > 0 && !(await ctx.sleep(ctx.opts.latencyMs))) return;
    if (fault?.type === 'reset') return destroy(ctx);
    if (fault?.type === 'status') return sendStatusFault(ctx, fault);
    if (o.apiKey !== undefined && rejectAuth(ctx, o.apiKey)) return;
    if (r === null) {
      return sendError(ctx, 404, `Invalid URL (${method} ${pathname})`, { code: null }, {});
    }
    if (badJson) {
      return sendError(
        ctx,
        400,
        kind === 'anthropic'
          ? 'There was an error parsing the body of your request'
          : "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
      );
    }
    switch (r) {
      case 'models':
        return sendJson(ctx, 200, modelsListBody(kind, provider.models));
      case 'chat':
        return handleChat(ctx);
      case 'responses':
        return handleResponses(ctx);
      case 'messages':
        return handleMessages(ctx);
      case 'count_tokens':
        return handleCountTokens(ctx);
      case 'embeddings':
        return handleEmbeddings(ctx);
      case 'images':
        return handleImages(ctx);
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      console.error(`[mock ${kind}]`, err);
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify(errorBody(kind, 500, String(err))));
      } else res.destroy();
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(init.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  provider.port = (server.address() as AddressInfo).port;
  provider.url = `http://127.0.0.1:${provider.port}/v1`;
  return provider;
}
