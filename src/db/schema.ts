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
  created_at: number;
  updated_at: number;
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

export interface Database {
  users: UsersTable;
  api_keys: ApiKeysTable;
  ledger: LedgerTable;
  holds: HoldsTable;
  usage_records: UsageRecordsTable;
  models: ModelsTable;
  provider_sync: ProviderSyncTable;
}
