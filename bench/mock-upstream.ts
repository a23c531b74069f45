/**
 * Fast OpenRouter-shaped mock upstream for the bench (plain node:http, no dependencies).
 *   GET  /v1/models            models with OpenRouter pricing strings (USD per token) so a billing gateway prices them
 *   POST /v1/chat/completions  JSON with usage, or SSE when stream=true (usage chunk when stream_options.include_usage)
 *   POST /v1/embeddings        JSON with usage
 *   GET  /mock/stats           counters and config;  POST /mock/config {chunks, interval_ms, latency_ms}
 * Prints `listening <port>` once it is ready. Loopback only.
 */
import http from 'node:http';
import { parseArgs } from './lib.js';

const args = parseArgs();
const cfg = { chunks: 16, interval_ms: 0, latency_ms: 0 };
const stats = { requests: 0, chat: 0, stream: 0, embeddings: 0, models: 0, open_streams: 0, errors: 0 };
const WORDS = ['Hello', ' from', ' the', ' mock', ' upstream', ',', ' this', ' is', ' token'];
const textCache = new Map<number, string>();
const fullText = (n: number): string => {
  let t = textCache.get(n);
  if (t === undefined) {
    t = Array.from({ length: n }, (_, i) => WORDS[i % WORDS.length]).join('');
    textCache.set(n, t);
  }
  return t;
};
const MODELS = JSON.stringify({
  object: 'list',
  data: [
    ['gpt-4o-mini', '0.00000015', '0.0000006'],
    ['gpt-4o', '0.0000025', '0.00001'],
    ['text-embedding-3-small', '0.00000002', '0'],
  ].map(([id, prompt, completion]) => ({
    id,
    object: 'model',
    created: 1700000000,
    owned_by: 'mock',
    name: id,
    context_length: 128000,
    top_provider: { context_length: 128000, max_completion_tokens: 16384 },
    pricing: { prompt, completion },
  })),
});

let seq = 0;
const promptTokens = (body: any): number => {
  let n = 0;
  for (const m of body.messages ?? []) n += typeof m.content === 'string' ? m.content.length : 8;
  return Math.max(1, Math.ceil(n / 4));
};

function send(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function chatJson(res: http.ServerResponse, body: any): void {
  stats.chat++;
  const pt = promptTokens(body);
  const n = cfg.chunks;
  send(
    res,
    200,
    JSON.stringify({
      id: `chatcmpl-mock${(++seq).toString(36)}`,
      object: 'chat.completion',
      created: (Date.now() / 1000) | 0,
      model: body.model ?? 'gpt-4o-mini',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: fullText(n), refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage: { prompt_tokens: pt, completion_tokens: n, total_tokens: pt + n },
      system_fingerprint: 'fp_mock',
    }),
  );
}

function chatStream(res: http.ServerResponse, body: any): void {
  stats.chat++;
  stats.stream++;
  stats.open_streams++;
  const chunks = cfg.chunks;
  const interval = cfg.interval_ms;
  const includeUsage = body.stream_options?.include_usage === true;
  const pt = promptTokens(body);
  const head = `{"id":"chatcmpl-mock${(++seq).toString(36)}","object":"chat.completion.chunk","created":${(Date.now() / 1000) | 0},"model":${JSON.stringify(body.model ?? 'gpt-4o-mini')},"choices":`;
  const tail = includeUsage ? ',"usage":null}\n\n' : '}\n\n';
  const at = (i: number): string => {
    if (i === 0)
      return `data: ${head}[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]${tail}`;
    if (i <= chunks)
      return `data: ${head}[{"index":0,"delta":{"content":${JSON.stringify(WORDS[(i - 1) % WORDS.length])}},"finish_reason":null}]${tail}`;
    let s = `data: ${head}[{"index":0,"delta":{},"finish_reason":"stop"}]${tail}`;
    if (includeUsage)
      s += `data: ${head}[],"usage":{"prompt_tokens":${pt},"completion_tokens":${chunks},"total_tokens":${pt + chunks}}}\n\n`;
    return `${s}data: [DONE]\n\n`;
  };
  let open = true;
  const finish = () => {
    if (open) {
      open = false;
      stats.open_streams--;
    }
  };
  res.on('close', finish);
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const last = chunks + 1;
  if (interval === 0) {
    let s = '';
    for (let i = 0; i <= last; i++) s += at(i);
    res.end(s);
    return;
  }
  let i = 0;
  const tick = () => {
    if (res.destroyed) return finish();
    if (i === last) {
      res.end(at(i));
      return;
    }
    res.write(at(i++));
    setTimeout(tick, interval);
  };
  tick();
}

function handle(req: http.IncomingMessage, res: http.ServerResponse, raw: string) {
  const path = (req.url ?? '/').split('?', 1)[0];
  if (path === '/mock/stats') return send(res, 200, JSON.stringify({ ...stats, config: cfg }));
  if (path === '/mock/config') {
    const c = JSON.parse(raw || '{}') as Record<string, unknown>;
    for (const k of Object.keys(cfg) as (keyof typeof cfg)[]) {
      const v = Number(c[k]);
      if (c[k] !== undefined && Number.isFinite(v) && v >= 0) cfg[k] = v;
    }
    return send(res, 200, JSON.stringify(cfg));
  }
  stats.requests++;
  if (req.method === 'GET' && (path === '/v1/models' || path === '/models')) {
    stats.models++;
    return send(res, 200, MODELS);
  }
  let body: any;
  try {
    body = raw ? JSON.parse(raw) : {};
  } catch {
    stats.errors++;
    return send(res, 400, '{"error":{"message":"invalid JSON","type":"invalid_request_error"}}');
  }
  if (path === '/v1/embeddings') {
    stats.embeddings++;
    const inputs = Array.isArray(body.input) ? body.input : [body.input ?? ''];
    return send(
      res,
      200,
      JSON.stringify({
        object: 'list',
        data: inputs.map((_: unknown, index: number) => ({
          object: 'embedding',
          index,
          embedding: [0.1, 0.2],
        })),
        model: body.model,
        usage: { prompt_tokens: inputs.length, total_tokens: inputs.length },
      }),
    );
  }
  if (path !== '/v1/chat/completions' || !Array.isArray(body.messages)) {
    stats.errors++;
    return send(res, 404, '{"error":{"message":"no such route","type":"invalid_request_error"}}');
  }
  if (body.stream === true) return chatStream(res, body);
  chatJson(res, body);
}

const server = http.createServer({ keepAlive: true, noDelay: true }, (req, res) => {
  const parts: Buffer[] = [];
  req.on('data', (c: Buffer) => parts.push(c));
  req.on('end', () => {
    const raw = parts.length === 1 ? parts[0]!.toString() : Buffer.concat(parts).toString();
    if (cfg.latency_ms > 0 && !req.url?.startsWith('/mock/'))
      setTimeout(() => handle(req, res, raw), cfg.latency_ms);
    else handle(req, res, raw);
  });
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.requestTimeout = 0;
server.maxConnections = 20_000;
server.listen(Number(args.port ?? 0), '127.0.0.1', () => {
  const a = server.address();
  console.log(`listening ${typeof a === 'object' && a ? a.port : 0}`);
});
const stop = () => {
  server.closeAllConnections();
  server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
