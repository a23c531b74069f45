import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DATABASES, type TestDatabase } from '../helpers/db.js';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { startTestSmtp, type TestSmtp } from '../helpers/smtp.js';

/** Two gateway instances on one database; commerce's jobs run in the fleet's job runner (one lease holder each). */
describe.each(DATABASES)('scheduled work on two instances (%s)', (kind) => {
  let smtp: TestSmtp;
  let db: TestDatabase;
  let a: RunningGateway;
  let b: RunningGateway;

  beforeAll(async () => {
    smtp = await startTestSmtp();
    db = await createTestDatabase(kind);
    const env = { SMTP_URL: smtp.url, JOBS_INTERVAL_MS: '100', EMAIL_RETRY_BASE_MS: '50' };
    a = await startGateway(db, env);
    b = await startGateway(db, env);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await db?.drop();
    await smtp?.close();
  });

  const until = async (ok: () => Promise<boolean>, ms = 8000) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (await ok()) return true;
      await new Promise((r) => setTimeout(r, 25));
    }
    return false;
  };

  it('a trial past its end expires by itself; each mail arrives once, a failed send is retried', async () => {
    const u = await a.createUser(0);
    const email = (
      await a.gw.db.db
        .selectFrom('users')
        .select('email')
        .where('id', '=', u.userId)
        .executeTakeFirstOrThrow()
    ).email!;
    // The welcome mail (queued at account creation) goes out first, by the scheduled outbox job.
    expect(await until(async () => smtp.mails.some((m) => m.to.includes(email)))).toBe(true);
    smtp.failNext(1);
    const r = await fetch(`${b.url}/trials/start`, {
      method: 'POST',
      headers: { authorization: `Bearer ${u.apiKey}` },
    });
    expect(r.status).toBe(200);
    // Ended a minute ago, not a millisecond: a reminder job that read its clock just before this
    // update and its rows just after would otherwise still find the trial ending "within a day".
    await a.gw.db.db
      .updateTable('trials')
      .set({ ends_at: Date.now() - 60_000 })
      .where('user_id', '=', u.userId)
      .execute();
    expect(await until(async () => (await a.gw.billing.balance(u.userId))!.trial_balance_micros === 0)).toBe(
      true,
    );
    expect(await until(async () => smtp.mails.filter((m) => m.to.includes(email)).length >= 3)).toBe(true);
    await new Promise((r) => setTimeout(r, 400));
    const subjects = smtp.mails.filter((m) => m.to.includes(email)).map((m) => m.subject);
    expect(subjects.sort()).toEqual([
      'Welcome to Gatewayz',
      'Your free trial has ended',
      'Your free trial has started',
    ]);
    const rows = await a.gw.db.db
      .selectFrom('ledger')
      .selectAll()
      .where('user_id', '=', u.userId)
      .where('kind', '=', 'trial_expired')
      .execute();
    expect(rows).toHaveLength(1);
    const outbox = await a.gw.db.db
      .selectFrom('email_outbox')
      .selectAll()
      .where('user_id', '=', u.userId)
      .where('template', 'like', 'trial%')
      .execute();
    expect(outbox.every((o) => o.status === 'sent')).toBe(true);
    expect(outbox.reduce((s, o) => s + o.attempts, 0)).toBe(3);
  });
});
