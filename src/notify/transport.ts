import type { FastifyBaseLogger } from 'fastify';
import type { Transporter } from 'nodemailer';
import type { Resend } from 'resend';
import { loadOptional } from '../lib/optional.js';

export interface OutgoingMail {
  from: string;
  to: string;
  subject: string;
  html: string;
  text: string;
  /** Stable id of the outbox row, so receivers can drop a duplicate after a crash mid-send. */
  messageId: string;
}

/** Sends one mail; throws on failure (the outbox retries). */
export interface MailTransport {
  readonly name: string;
  send(mail: OutgoingMail): Promise<{ id: string | null }>;
  close?(): void;
}

export class SmtpTransport implements MailTransport {
  readonly name = 'smtp';
  private readonly t: Transporter;
  constructor(url: string) {
    this.t = loadOptional<typeof import('nodemailer')>('nodemailer').createTransport(url);
  }
  async send(m: OutgoingMail) {
    const r = await this.t.sendMail({
      from: m.from,
      to: m.to,
      subject: m.subject,
      html: m.html,
      text: m.text,
      messageId: m.messageId,
    });
    return { id: r.messageId ?? null };
  }
  close() {
    this.t.close();
  }
}

export class ResendTransport implements MailTransport {
  readonly name = 'resend';
  private readonly client: Resend;
  constructor(apiKey: string, baseUrl: string | null) {
    const { Resend: ResendClient } = loadOptional<typeof import('resend')>('resend');
    this.client = new ResendClient(apiKey, baseUrl ? { baseUrl } : undefined);
  }
  async send(m: OutgoingMail) {
    const r = await this.client.emails.send(
      {
        from: m.from,
        to: m.to,
        subject: m.subject,
        html: m.html,
        text: m.text,
        headers: { 'Message-ID': m.messageId },
      },
      { idempotencyKey: m.messageId },
    );
    if (r.error) throw new Error(`resend: ${r.error.message}`);
    return { id: r.data?.id ?? null };
  }
}

/** Default when no transport is configured: the mail is logged (without its body) and counted as sent. */
export class LogTransport implements MailTransport {
  readonly name = 'log';
  constructor(private readonly log: FastifyBaseLogger) {}
  async send(m: OutgoingMail) {
    this.log.info({ to: m.to, subject: m.subject }, 'e-mail (no transport configured)');
    return { id: null };
  }
}

export function makeTransport(
  cfg: { smtpUrl: string | null; resendApiKey: string | null; resendBaseUrl: string | null },
  log: FastifyBaseLogger,
): MailTransport {
  if (cfg.smtpUrl) return new SmtpTransport(cfg.smtpUrl);
  if (cfg.resendApiKey) return new ResendTransport(cfg.resendApiKey, cfg.resendBaseUrl);
  return new LogTransport(log);
}
