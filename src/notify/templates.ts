/** E-mail templates (HTML + text). Values are escaped in HTML; amounts arrive as USD numbers. */
export type TemplateName =
  | 'welcome'
  | 'trial_started'
  | 'trial_ending'
  | 'trial_ended'
  | 'low_balance'
  | 'payment_receipt'
  | 'plan_changed'
  | 'api_key_created';

export const TEMPLATE_NAMES: TemplateName[] = [
  'welcome',
  'trial_started',
  'trial_ending',
  'trial_ended',
  'low_balance',
  'payment_receipt',
  'plan_changed',
  'api_key_created',
];

export interface Rendered {
  subject: string;
  html: string;
  text: string;
}

type Data = Record<string, unknown>;

const esc = (v: unknown) =>
  String(v ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
const usd = (v: unknown) => `$${Number(v ?? 0).toFixed(2)}`;
const date = (v: unknown) =>
  typeof v === 'number' ? `${new Date(v).toISOString().replace('T', ' ').slice(0, 16)} UTC` : String(v ?? '');

function page(app: string, title: string, lines: string[]): { html: string; text: string } {
  const html = `<!doctype html><html><body style="font-family:sans-serif"><h2>${esc(title)}</h2>${lines
    .map((l) => `<p>${esc(l)}</p>`)
    .join('')}<p style="color:#888">— ${esc(app)}</p></body></html>`;
  const text = `${title}\n\n${lines.join('\n\n')}\n\n— ${app}\n`;
  return { html, text };
}

const TEMPLATES: Record<
  TemplateName,
  (d: Data, app: string) => { subject: string; title: string; lines: string[] }
> = {
  welcome: (d, app) => ({
    subject: `Welcome to ${app}`,
    title: `Welcome${d.name ? `, ${d.name}` : ''}!`,
    lines: [
      `Your ${app} account is ready. Use your API key with any OpenAI-compatible client.`,
      `Your referral code is ${d.referral_code ?? '(see /referral/code)'}.`,
    ],
  }),
  trial_started: (d) => ({
    subject: 'Your free trial has started',
    title: 'Your free trial has started',
    lines: [
      `You have ${usd(d.credits)} of trial credits, ${d.tokens} tokens and ${d.requests} requests.`,
      `The trial ends on ${date(d.end_date)}.`,
    ],
  }),
  trial_ending: (d) => ({
    subject: 'Your free trial ends tomorrow',
    title: 'Your free trial ends tomorrow',
    lines: [
      `Your trial ends on ${date(d.end_date)}; ${usd(d.remaining_credits)} of trial credits are left.`,
      'Buy credits or choose a plan to keep going without interruption.',
    ],
  }),
  trial_ended: (d) => ({
    subject: 'Your free trial has ended',
    title: 'Your free trial has ended',
    lines: [
      `Your trial ended (${String(d.reason ?? 'expired')}). ${usd(d.removed_credits)} of unused trial credits were removed.`,
      'Buy credits or choose a plan to continue.',
    ],
  }),
  low_balance: (d) => ({
    subject: `Low balance: ${usd(d.balance)} left`,
    title: 'Your balance is low',
    lines: [`Your balance is ${usd(d.balance)}, below your alert threshold of ${usd(d.threshold)}.`],
  }),
  payment_receipt: (d) => ({
    subject: `Receipt for your payment of ${usd(d.amount)}`,
    title: 'Payment received — thank you',
    lines: [
      `Payment ${d.payment_id}: ${usd(d.amount)} paid, ${usd(d.credits)} of credits added.`,
      `New balance: ${usd(d.balance)}.`,
    ],
  }),
  plan_changed: (d) => ({
    subject: `Your plan is now ${d.plan_name}`,
    title: 'Your plan changed',
    lines: [`Your plan changed from ${d.previous_plan} to ${d.plan_name}.`],
  }),
  api_key_created: (d) => ({
    subject: 'A new API key was created',
    title: 'A new API key was created',
    lines: [
      `A new API key "${d.key_name}" (${d.key_prefix}…) was created on ${date(d.created_at)}.`,
      'If this was not you, revoke it and rotate your keys.',
    ],
  }),
};

export function render(name: TemplateName, data: Data, appName = 'Gatewayz'): Rendered {
  const t = TEMPLATES[name](data, appName);
  return { subject: t.subject, ...page(appName, t.title, t.lines) };
}
