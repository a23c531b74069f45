import type { Generated } from 'kysely';

/** Timestamps are epoch milliseconds; money is integer micro-dollars; JSON is stored as text. */
export interface UsersTable {
  id: string;
  email: string | null;
  username: string | null;
  privy_id: string | null;
  role: string;
  status: string;
  balance_micros: number;
  held_micros: number;
  /** 030_commerce: the trial credit bucket (== Σ ledger rows with bucket 'trial'); spent before balance_micros. */
  trial_balance_micros?: number;
  created_at: number;
  updated_at: number;
  /** 010_accounts: this user's own referral code (unique). */
  referral_code: string | null;
  /** 010_accounts: the referral code given at sign-up (read by commerce). */
  referred_by_code: string | null;
  display_name: string | null;
  deleted_at: number | null;
}

export interface ApiKeysTable {
  id: string;
  user_id: string;
  key_hash: string;
  prefix: string;
  name: string;
  environment: string;
  is_primary: number;
  is_active: number;
  scopes: string | null;
  expires_at: number | null;
  max_requests: number | null;
  request_count: number;
  ip_allowlist: string | null;
  domain_referrers: string | null;
  allowed_models: string | null;
  max_spend_micros: number | null;
  spent_micros: number;
  last_used_at: number | null;
  created_at: number;
  updated_at: number;
  /** 010_accounts: HMAC of the secret replaced by the last rotation, valid until previous_expires_at. */
  previous_key_hash: string | null;
  previous_expires_at: number | null;
}

export interface LedgerTable {
  id: Generated<number>;
  user_id: string;
  kind: string;
  amount_micros: number;
  balance_after: number;
  reference: string | null;
  idempotency_key: string | null;
  description: string | null;
  created_at: number;
  /** 030_commerce: 'paid' (balance_micros) or 'trial' (trial_balance_micros). */
  bucket: Generated<string>;
}

export interface HoldsTable {
  id: string;
  user_id: string;
  key_id: string | null;
  amount_micros: number;
  request_id: string;
  created_at: number;
  expires_at: number;
}

export interface UsageRecordsTable {
  id: Generated<number>;
  request_id: string;
  user_id: string;
  key_id: string | null;
  endpoint: string;
  model: string;
  provider: string;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  cost_micros: number;
  latency_ms: number;
  status: string;
  stream: number;
  app: string | null;
  created_at: number;
}

export interface ModelsTable {
  provider: string;
  model_id: string;
  upstream_id: string;
  name: string;
  description: string | null;
  context_length: number | null;
  max_output_tokens: number | null;
  prompt_micros_per_m: number | null;
  completion_micros_per_m: number | null;
  cache_read_micros_per_m: number | null;
  cache_write_micros_per_m: number | null;
  reasoning_micros_per_m: number | null;
  request_micros: number | null;
  image_micros: number | null;
  modality: string | null;
  raw: string | null;
  updated_at: number;
}

export interface ProviderSyncTable {
  provider: string;
  status: string;
  model_count: number;
  last_sync_at: number | null;
  last_error: string | null;
}

export interface StoredResponsesTable {
  id: string;
  user_id: string;
  model: string;
  status: string;
  input_items: string;
  response: string;
  created_at: number;
}

export interface Database {
  stored_responses: StoredResponsesTable;
  rate_limit_overrides: RateLimitOverridesTable;
  users: UsersTable;
  api_keys: ApiKeysTable;
  ledger: LedgerTable;
  holds: HoldsTable;
  usage_records: UsageRecordsTable;
  models: ModelsTable;
  provider_sync: ProviderSyncTable;
  chat_sessions: ChatSessionsTable;
  chat_messages: ChatMessagesTable;
  roles: RolesTable;
  audit_logs: AuditLogsTable;
  user_plans: UserPlansTable;
  trials: TrialsTable;
  payments: PaymentsTable;
  stripe_events: StripeEventsTable;
  coupons: CouponsTable;
  coupon_redemptions: CouponRedemptionsTable;
  referral_rewards: ReferralRewardsTable;
  debts: DebtsTable;
  email_outbox: EmailOutboxTable;
  notification_prefs: NotificationPrefsTable;
  fleet_leases: FleetLeasesTable;
}

export interface ChatSessionsTable {
  id: string;
  user_id: string;
  title: string;
  model: string | null;
  message_count: number;
  created_at: number;
  /** Last activity (a message added, a rename); lists sort by it, newest first. */
  updated_at: number;
}

export interface ChatMessagesTable {
  id: Generated<number>;
  session_id: string;
  user_id: string;
  role: string;
  /** Plain text (string content, or the text parts joined) — what search looks at. */
  content: string;
  /** JSON of the original content when it was a list of parts (images, …), else null. */
  parts: string | null;
  model: string | null;
  tokens: number;
  created_at: number;
}

/** 010_accounts: custom roles as named permission sets (`resource:action`, `*` wildcards). */
export interface RolesTable {
  name: string;
  /** JSON array of permission patterns. */
  permissions: string;
  description: string | null;
  created_at: number;
  updated_at: number;
}

/** 010_accounts: append-only audit log. */
export interface AuditLogsTable {
  id: Generated<number>;
  user_id: string | null;
  actor: string;
  action: string;
  resource_type: string | null;
  resource_id: string | null;
  /** JSON object. */
  details: string | null;
  ip: string | null;
  user_agent: string | null;
  at: number;
}

// 030_commerce / 031_notify
export interface UserPlansTable {
  user_id: string;
  plan_id: string;
  /** admin | stripe */
  source: string;
  /** active | past_due | canceled */
  status: string;
  interval: string;
  stripe_subscription_id: string | null;
  pending_plan_id: string | null;
  cancel_at_period_end: number;
  current_period_start: number;
  current_period_end: number | null;
  /** When the next included monthly credit is due (plans not billed through Stripe invoices). */
  next_credit_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface TrialsTable {
  user_id: string;
  /** active | converted | expired */
  status: string;
  started_at: number;
  ends_at: number;
  credits_micros: number;
  tokens_limit: number;
  requests_limit: number;
  tokens_used: number;
  requests_used: number;
  credits_expired: number;
  reminder_sent: number;
  ended_at: number | null;
  end_reason: string | null;
}

export interface PaymentsTable {
  id: string;
  user_id: string;
  /** topup | subscription | invoice */
  kind: string;
  /** pending | paid | refunded | partially_refunded | expired */
  status: string;
  plan_id: string | null;
  package_id: string | null;
  coupon_id: string | null;
  currency: string;
  price_micros: number;
  charge_micros: number;
  credits_micros: number;
  paid_micros: number;
  granted_micros: number;
  refunded_micros: number;
  clawed_back_micros: number;
  stripe_session_id: string | null;
  stripe_payment_intent_id: string | null;
  stripe_invoice_id: string | null;
  stripe_subscription_id: string | null;
  checkout_url: string | null;
  created_at: number;
  updated_at: number;
  paid_at: number | null;
}

export interface StripeEventsTable {
  id: string;
  type: string;
  outcome: string | null;
  received_at: number;
}

export interface CouponsTable {
  id: string;
  code: string;
  /** credit | percent | fixed */
  kind: string;
  /** credit/fixed: micro-dollars; percent: basis points (1% = 100) */
  value: number;
  user_id: string | null;
  valid_from: number | null;
  valid_until: number | null;
  max_uses: number | null;
  uses: number;
  once_per_user: number;
  new_users_only: number;
  plan_ids: string | null;
  is_active: number;
  description: string | null;
  created_at: number;
  updated_at: number;
}

export interface CouponRedemptionsTable {
  id: Generated<number>;
  coupon_id: string;
  user_id: string;
  uniqueness: string;
  amount_micros: number;
  payment_id: string | null;
  ledger_id: number | null;
  created_at: number;
}

export interface ReferralRewardsTable {
  id: Generated<number>;
  referrer_user_id: string;
  referred_user_id: string;
  code: string;
  slot: number;
  payment_id: string;
  amount_micros: number;
  created_at: number;
}

export interface DebtsTable {
  id: Generated<number>;
  user_id: string;
  cause: string;
  amount_micros: number;
  created_at: number;
}

export interface EmailOutboxTable {
  id: Generated<number>;
  dedupe_key: string;
  user_id: string | null;
  to_address: string;
  template: string;
  subject: string;
  html: string;
  text: string;
  /** pending | sending | sent | failed */
  status: string;
  attempts: number;
  next_attempt_at: number;
  locked_until: number | null;
  last_error: string | null;
  provider_id: string | null;
  created_at: number;
  sent_at: number | null;
}

export interface NotificationPrefsTable {
  user_id: string;
  email_enabled: number;
  low_balance_threshold_micros: number | null;
  low_balance_alerted: number;
  trial_reminders: number;
  payment_receipts: number;
  plan_changes: number;
  security_alerts: number;
  updated_at: number;
}

/** 060_fleet: one row per scheduled job; the owner runs it until `expires_at` (epoch ms). */
export interface FleetLeasesTable {
  name: string;
  owner: string;
  expires_at: number;
}

/** 020_rate_limits: admin-set limits of one user or key; null columns fall back to the plan. */
export interface RateLimitOverridesTable {
  /** 'user' | 'key' */
  subject_type: string;
  subject_id: string;
  /** The user (for a key: its owner). */
  user_id: string;
  requests_per_minute: number | null;
  requests_per_hour: number | null;
  requests_per_day: number | null;
  tokens_per_minute: number | null;
  tokens_per_hour: number | null;
  tokens_per_day: number | null;
  requests_per_month: number | null;
  tokens_per_month: number | null;
  concurrency: number | null;
  reason: string | null;
  updated_by: string;
  created_at: number;
  updated_at: number;
}
