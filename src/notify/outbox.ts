import type { FastifyBaseLogger } from 'fastify';
import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/schema.js';
import { render, type TemplateName } from './templates.js';
import type { MailTransport } from './transport.js';

export interface OutboxOptions {
  from: string;
  appName: string;
  maxAttempts: number;
  /** First retry delay; doubles per attempt, capped at six hours. */
  retryBaseMs: number;
  /** How long a claimed row is ours before another worker may take it over (a crashed sender). */
  leaseMs?: number;
}

export interface NewMail {
  dedupeKey: string;
  userId: string | null;
  to: string;
  template: TemplateName;
  data: Record<string, unknown>;
}

/**
 * Mails are rendered into the outbox table (one row per dedupe key, so a mail is never queued
 * twice) and sent by `runOnce`: a row is claimed with one conditional statement, so two workers
 * never send the same row; a failed send is retried with exponential back-off.
 */
export class Outbox {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly transport: MailTransport,
    private readonly opts: OutboxOptions,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Queue a mail; false when one with this dedupe key exists already. */
  async enqueue(m: NewMail, now: number, trx: Kysely<Database> = this.db): Promise<boolean> {
    const r = render(m.template, m.data, this.opts.appName);
    const res = await trx
      .insertInto('email_outbox')
      .values({
        dedupe_key: m.dedupeKey,
        user_id: m.userId,
        to_address: m.to,
        template: m.template,
        subject: r.subject,
        html: r.html,
        text: r.text,
        status: 'pending',
        attempts: 0,
        // Due at once (a cause evaluated with a clock ahead of the wall clock does not delay it).
        next_attempt_at: Math.min(now, Date.now()),
        locked_until: null,
        last_error: null,
        provider_id: null,
        created_at: now,
        sent_at: null,
      })
      .onConflict((oc) => oc.column('dedupe_key').doNothing())
      .executeTakeFirst();
    return Number(r2n(res.numInsertedOrUpdatedRows)) === 1;
  }

  /** Send what is due. Returns how many were sent and how many failed this round. */
  async runOnce(now = Date.now(), limit = 50): Promise<{ sent: number; failed: number }> {
    const leaseMs = this.opts.leaseMs ?? 120_000;
    const due = await this.db
      .selectFrom('email_outbox')
      .select('id')
      .where((eb) =>
        eb.or([
          eb.and([eb('status', '=', 'pending'), eb('next_attempt_at', '<=', now)]),
          eb.and([eb('status', '=', 'sending'), eb('locked_until', '<', now)]),
        ]),
      )
      .orderBy('id')
      .limit(limit)
      .execute();
    let sent = 0;
    let failed = 0;
    for (const { id } of due) {
      const claimed = await this.db
        .updateTable('email_outbox')
        .set({ status: 'sending', locked_until: now + leaseMs, attempts: sql`attempts + 1` })
        .where('id', '=', id)
        .where((eb) =>
          eb.or([
            eb.and([eb('status', '=', 'pending'), eb('next_attempt_at', '<=', now)]),
            eb.and([eb('status', '=', 'sending'), eb('locked_until', '<', now)]),
          ]),
        )
        .returningAll()
        .executeTakeFirst();
      if (!claimed) continue;
      try {
        const r = await this.transport.send({
          from: this.opts.from,
          to: claimed.to_address,
          subject: claimed.subject,
          html: claimed.html,
          text: claimed.text,
          messageId: `<outbox-${claimed.id}-${claimed.dedupe_key.replace(/[^A-Za-z0-9._-]/g, '_')}@gatewayz>`,
        });
        await this.db
          .updateTable('email_outbox')
          .set({
            status: 'sent',
            sent_at: Date.now(),
            locked_until: null,
            last_error: null,
            provider_id: r.id,
          })
          .where('id', '=', id)
          .execute();
        sent++;
      } catch (err) {
        failed++;
        const attempts = claimed.attempts;
        const giveUp = attempts >= this.opts.maxAttempts;
        const delay = Math.min(this.opts.retryBaseMs * 2 ** (attempts - 1), 6 * 3_600_000);
        this.log.warn({ err, outboxId: id, attempts, giveUp }, 'e-mail send failed');
        await this.db
          .updateTable('email_outbox')
          .set({
            status: giveUp ? 'failed' : 'pending',
            next_attempt_at: now + delay,
            locked_until: null,
            last_error: String((err as Error)?.message ?? err).slice(0, 500),
          })
          .where('id', '=', id)
          .execute();
      }
    }
    return { sent, failed };
  }
}

const r2n = (v: bigint | undefined) => (v === undefined ? 0 : Number(v));
