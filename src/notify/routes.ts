import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { requireUser } from '../http/auth.js';
import { microsToUsd, usdToMicros } from '../lib/money.js';
import type { Notifier, PrefsRow } from './service.js';

const prefsJson = (p: PrefsRow) => ({
  email_enabled: p.email_enabled === 1,
  low_balance_threshold:
    p.low_balance_threshold_micros === null ? null : microsToUsd(p.low_balance_threshold_micros),
  trial_reminders: p.trial_reminders === 1,
  payment_receipts: p.payment_receipts === 1,
  plan_changes: p.plan_changes === 1,
  security_alerts: p.security_alerts === 1,
});

const Prefs = Type.Object(
  {
    email_enabled: Type.Optional(Type.Boolean()),
    low_balance_threshold: Type.Optional(
      Type.Union([Type.Number({ minimum: 0, maximum: 1_000_000 }), Type.Null()]),
    ),
    trial_reminders: Type.Optional(Type.Boolean()),
    payment_receipts: Type.Optional(Type.Boolean()),
    plan_changes: Type.Optional(Type.Boolean()),
    security_alerts: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export function notifyRoutes(app: FastifyInstance, notifier: Notifier): void {
  app.get(
    '/user/notifications/preferences',
    { schema: { tags: ['user'], summary: 'E-mail notification preferences' }, config: { auth: 'user' } },
    async (request) => prefsJson(await notifier.prefs(requireUser(request).userId)),
  );
  app.put(
    '/user/notifications/preferences',
    {
      schema: {
        tags: ['user'],
        summary: 'Change e-mail notification preferences (fields left out stay)',
        body: Prefs,
      },
      config: { auth: 'user' },
    },
    async (request) => {
      const b = request.body as Record<string, boolean | number | null | undefined>;
      const patch: Partial<PrefsRow> = {};
      const flag = (k: keyof PrefsRow & string) => {
        if (typeof b[k] === 'boolean') (patch as Record<string, number>)[k] = b[k] ? 1 : 0;
      };
      for (const k of [
        'email_enabled',
        'trial_reminders',
        'payment_receipts',
        'plan_changes',
        'security_alerts',
      ] as const)
        flag(k);
      if (b.low_balance_threshold !== undefined)
        patch.low_balance_threshold_micros =
          b.low_balance_threshold === null ? null : usdToMicros(b.low_balance_threshold as number);
      return prefsJson(await notifier.setPrefs(requireUser(request).userId, patch, Date.now()));
    },
  );
}
