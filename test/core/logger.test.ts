import { Writable } from 'node:stream';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { CENSOR, censorNested, loggerOptions } from '../../src/http/logger.js';

/** The gateway's pino options on a real Fastify logger: what reaches the log stream. */
describe('logger redaction', () => {
  const capture = () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    return { lines, stream };
  };

  it('censors keys at the top, one level down and in request headers; leaves the rest', async () => {
    const { lines, stream } = capture();
    const app = Fastify({ logger: loggerOptions('info', { stream }) });
    app.log.info(
      {
        api_key: 'sk-top-secret',
        body: { api_key: 'sk-nested-secret', model: 'gpt-4o' },
        user: { apiKey: 'gw_live_nested', id: 'usr_1' },
        headers: { authorization: 'Bearer gw_live_header', 'x-api-key': 'gw_live_x' },
        list: [{ api_key: 'kept-in-arrays-by-design' }],
      },
      'hello',
    );
    const child = app.log.child({ reqId: 'req_1' });
    child.warn({ body: { api_key: 'sk-child-secret' } }, 'from a child');
    await app.close();
    const out = lines.join('');
    for (const s of [
      'sk-top-secret',
      'sk-nested-secret',
      'gw_live_nested',
      'gw_live_header',
      'gw_live_x',
      'sk-child-secret',
    ])
      expect(out).not.toContain(s);
    const first = JSON.parse(lines[0]!);
    expect(first.api_key).toBe(CENSOR);
    expect(first.body).toEqual({ api_key: CENSOR, model: 'gpt-4o' });
    expect(first.user).toEqual({ apiKey: CENSOR, id: 'usr_1' });
    expect(first.headers.authorization).toBe(CENSOR);
    const second = JSON.parse(lines[1]!);
    expect(second.reqId).toBe('req_1');
    expect(second.body.api_key).toBe(CENSOR);
  });

  it('never changes the object that was logged', () => {
    const logged = { body: { api_key: 'sk-secret' }, n: 1 };
    const out = censorNested(logged);
    expect(out).not.toBe(logged);
    expect(logged.body.api_key).toBe('sk-secret');
    const plain = { a: { b: 1 } };
    expect(censorNested(plain)).toBe(plain);
  });
});
