import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { writePriceConfig } from '../helpers/prices.js';
import { defaultModels, modelsListBody } from '../mocks/catalog.js';

/**
 * A client that stops reading a stream stops the upstream: the gateway relays chunk by chunk
 * (src/inference/stream-io.ts `pumpBody`), pauses the upstream body while the client's socket is
 * full and resumes it when it drains, so nothing piles up in between, and every event still arrives.
 */
describe('stream back-pressure through the gateway', () => {
  const MiB = 1024 * 1024;
  const EVENTS = 24_000;
  /** ~2.8 KiB per event: 64 MiB in all, far more than the sockets on the way can hold. */
  const WORD = 'w'.repeat(2_700);
  let upstream: http.Server;
  let g: RunningGateway;
  /** Bytes of the stream the upstream's socket accepted (write callbacks). */
  let accepted = 0;
  let total = 0;
  let streamDone: Promise<void> = Promise.resolve();

  beforeAll(async () => {
    const event = (i: number) =>
      `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"openai/gpt-4o-mini","choices":[{"index":0,"delta":{"content":"${i === 0 ? '' : WORD}"},"finish_reason":null}]}\n\n`;
    upstream = http.createServer((req, res) => {
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(modelsListBody('openrouter', defaultModels('openrouter'))));
        return;
      }
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        accepted = 0;
        total = 0;
        let i = 0;
        streamDone = new Promise((done) => {
          res.on('close', done);
          const pump = () => {
            while (i < EVENTS) {
              const e = event(i++);
              total += e.length;
              const ok = res.write(e, () => {
                accepted += e.length;
              });
              if (!ok) return void res.once('drain', pump);
            }
            const last =
              'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"openai/gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n' +
              `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"openai/gpt-4o-mini","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":${EVENTS - 1},"total_tokens":${EVENTS + 4}}}\n\n` +
              'data: [DONE]\n\n';
            total += last.length;
            res.end(last, () => {
              accepted += last.length;
            });
          };
          pump();
        });
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const db = await createTestDatabase('sqlite');
    g = await startGateway(db, {
      OPENROUTER_API_KEY: 'k',
      OPENROUTER_BASE_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`,
      GATEWAYZ_CONFIG: writePriceConfig(db.dataDir),
    });
  });

  afterAll(async () => {
    await g?.close();
    await g?.db.drop();
    upstream?.closeAllConnections();
    await new Promise((r) => upstream?.close(r));
  });

  it('a client that pauses stalls the upstream; on resuming it gets every event, then [DONE], and is charged once', async () => {
    const u = await g.createUser(100);
    const url = new URL(`${g.v1}/chat/completions`);
    const body = JSON.stringify({
      model: 'openai/gpt-4o-mini',
      stream: true,
      messages: [{ role: 'user', content: 'a long answer, please' }],
    });
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${u.apiKey}`, 'content-type': 'application/json' },
      });
      req.on('response', resolve).on('error', reject).end(body);
    });
    expect(res.statusCode).toBe(200);
    try {
      await readPausing(res, u.userId);
    } finally {
      res.destroy(); // after a failed assertion, so the gateway can close
    }
  }, 60_000);

  async function readPausing(res: http.IncomingMessage, userId: string): Promise<void> {
    res.setEncoding('utf8');
    let text = '';
    const first = new Promise<void>((r) => res.once('data', () => r()));
    res.on('data', (c: string) => {
      text += c;
    });
    await first;
    res.pause();
    await new Promise((r) => setTimeout(r, 600));
    const whilePaused = accepted;
    await new Promise((r) => setTimeout(r, 400));
    // Stalled: no further than the sockets' buffers and the gateway's 64 KiB queue, not the whole answer.
    expect(accepted).toBe(whilePaused);
    expect(whilePaused).toBeLessThan(48 * MiB);
    const ended = new Promise<void>((r) => res.on('end', () => r()));
    res.resume();
    await ended;
    await streamDone;
    expect(total).toBeGreaterThan(64 * MiB);
    expect(accepted).toBe(total);
    const events = text.split('\n\n').filter((e) => e.startsWith('data: '));
    expect(events.at(-1)).toBe('data: [DONE]');
    expect(events.filter((e) => e.includes(WORD))).toHaveLength(EVENTS - 1);
    const records = await g.gw.db.db
      .selectFrom('usage_records')
      .select(['completion_tokens', 'status'])
      .where('user_id', '=', userId)
      .execute();
    expect(records).toEqual([{ completion_tokens: EVENTS - 1, status: 'ok' }]);
  }
});
