import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResendTransport } from '../../src/notify/transport.js';

/** The Resend transport against a local HTTP server speaking Resend's /emails endpoint. */
describe('resend transport', () => {
  const got: Array<{ body: any; headers: Record<string, unknown> }> = [];
  let failNext = 0;
  let url = '';
  const server = createServer((req, res) => {
    let s = '';
    req.on('data', (c) => (s += c));
    req.on('end', () => {
      if (failNext > 0) {
        failNext--;
        res.writeHead(500, { 'content-type': 'application/json' });
        return res.end(
          JSON.stringify({ name: 'internal_server_error', message: 'mock outage', statusCode: 500 }),
        );
      }
      got.push({ body: JSON.parse(s), headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: `re_${got.length}` }));
    });
  });
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('sends with the API key and an idempotency key; a server error throws (so the outbox retries)', async () => {
    const t = new ResendTransport('re_test_key', url);
    const mail = {
      from: 'a@x.test',
      to: 'b@y.test',
      subject: 'Hi',
      html: '<p>Hi</p>',
      text: 'Hi',
      messageId: '<outbox-1@gatewayz>',
    };
    failNext = 1;
    await expect(t.send(mail)).rejects.toThrow(/mock outage/);
    expect(await t.send(mail)).toEqual({ id: 're_1' });
    expect(got[0]!.body).toMatchObject({
      from: 'a@x.test',
      to: 'b@y.test',
      subject: 'Hi',
      html: '<p>Hi</p>',
      text: 'Hi',
    });
    expect(got[0]!.headers.authorization).toBe('Bearer re_test_key');
    expect(got[0]!.headers['idempotency-key']).toBe('<outbox-1@gatewayz>');
  });
});
