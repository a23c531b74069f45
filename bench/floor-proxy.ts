/**
 * The floor (`--peer floor`): the least a Node proxy on this stack does per request, measured beside
 * the gateway so a run shows what the extra hop itself costs on this machine. Fastify 5 and an undici
 * 7 keep-alive pool, as in the gateway; the request body is forwarded as it arrived (no parsing) and
 * the upstream's status, content type and body are relayed as they come (streams chunk by chunk). No
 * authentication, limits, billing, routing or metrics.
 *   --port=N --upstream=http://127.0.0.1:M   (prints `listening <port>`; loopback only)
 */
import Fastify from 'fastify';
import { Pool } from 'undici';
import { parseArgs } from './lib.js';

const a = parseArgs();
const upstream = new URL(a.upstream!);
if (!upstream.hostname.startsWith('127.')) throw new Error(`refusing non-loopback upstream ${upstream}`);
const basePath = upstream.pathname.replace(/\/$/, '');
const pool = new Pool(upstream.origin, { connections: null, pipelining: 1 }); // as many as requests in flight (2,000 open streams)
const app = Fastify({ logger: false });
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

app.post('/v1/*', async (request, reply) => {
  const res = await pool.request({
    path: `${basePath}/${(request.params as { '*': string })['*']}`,
    method: 'POST',
    body: request.body as Buffer,
    headers: {
      'content-type': request.headers['content-type'] ?? 'application/json',
      authorization: request.headers.authorization ?? '',
    },
  });
  reply.code(res.statusCode);
  const ct = res.headers['content-type'];
  if (ct) reply.header('content-type', ct);
  return reply.send(res.body);
});

await app.listen({ port: Number(a.port), host: '127.0.0.1' });
console.log(`listening ${a.port}`);
